//! The detector: a baseline per series from its history, a band around it,
//! and the rule that opens an insight when a series leaves the band (a
//! spike above it, or a drop below it for a steady series) and closes it
//! when the series is back for several minutes. docs/INSIGHTS.md explains
//! the choices. Pure: it sees per-minute counts, nothing else.

/// How sensitive the detector is, and its minimums.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Standard deviations above the expected rate that make a spike
    /// (higher: fewer insights).
    pub sensitivity: f64,
    /// A spike is also at least this many times the expected rate...
    pub spike_ratio: f64,
    /// ... and at least this many calls per minute above it, so rare APIs
    /// (a few calls a day) do not flap.
    pub spike_min_excess: f64,
    /// Minutes of a 3-minute window above the band that open a spike.
    pub spike_minutes: usize,
    /// A drop needs an expected rate of at least this many calls per minute,
    /// with little variation, ...
    pub drop_min_rate: f64,
    /// ... falling below this fraction of it ...
    pub drop_ratio: f64,
    /// ... for this many minutes in a row.
    pub drop_minutes: usize,
    /// Minutes back inside the band, in a row, that close an insight.
    pub close_minutes: usize,
    /// History the baseline draws on, at most (CloudTrail: 28 days).
    pub baseline_max_minutes: usize,
    /// History a baseline needs at least (shorter: no insight yet).
    pub baseline_min_minutes: usize,
    /// Weeks of history that make the baseline seasonal (by hour of week).
    pub seasonal_weeks: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            sensitivity: 6.0,
            spike_ratio: 3.0,
            spike_min_excess: 10.0,
            spike_minutes: 2,
            drop_min_rate: 5.0,
            drop_ratio: 0.1,
            drop_minutes: 5,
            close_minutes: 5,
            baseline_max_minutes: 28 * 1440,
            baseline_min_minutes: 1440,
            seasonal_weeks: 3,
        }
    }
}

/// A spike or a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Spike,
    Drop,
}

/// One anomaly of one series, in minutes relative to the series' start.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub direction: Direction,
    /// First minute outside the band.
    pub start: usize,
    /// First minute of the streak back inside that closed it; `None`: still
    /// open at the end of the counts.
    pub end: Option<usize>,
    /// The expected per-minute rate at the start (the baseline average).
    pub expected: f64,
}

/// Expected rate and spread for each minute, from the history before it:
/// the whole trailing window, or the same hour of the week over the
/// trailing weeks when there are enough of them. Recomputed once a day, as
/// CloudTrail recomputes its baseline daily.
struct Baseline {
    /// Prefix sums of counts and of squares.
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Baseline {
    fn new(counts: &[u32]) -> Self {
        let mut sum = Vec::with_capacity(counts.len() + 1);
        let mut sq = Vec::with_capacity(counts.len() + 1);
        let (mut a, mut b) = (0.0, 0.0);
        sum.push(0.0);
        sq.push(0.0);
        for &c in counts {
            a += f64::from(c);
            b += f64::from(c) * f64::from(c);
            sum.push(a);
            sq.push(b);
        }
        Baseline { sum, sq }
    }

    fn range(&self, lo: usize, hi: usize) -> (f64, f64, f64) {
        let n = (hi - lo) as f64;
        (n, self.sum[hi] - self.sum[lo], self.sq[hi] - self.sq[lo])
    }

    /// (mean, standard deviation) of minutes [lo, hi).
    fn stats(&self, lo: usize, hi: usize) -> (f64, f64) {
        let (n, s, q) = self.range(lo, hi);
        if n == 0.0 {
            return (0.0, 0.0);
        }
        let mean = s / n;
        (mean, (q / n - mean * mean).max(0.0).sqrt())
    }
}

/// Expected per-minute rate and its standard deviation.
type Band = (f64, f64);

/// (expected, spread) for minute `t`, computed from history ending at
/// `day_start` (the start of `t`'s day, relative to the counts).
fn expect(b: &Baseline, t: usize, day_start: usize, first: usize, minute0: i64, o: &DetectOptions) -> Option<Band> {
    let hist = day_start.saturating_sub(first);
    if hist < o.baseline_min_minutes {
        return None;
    }
    let lo = day_start - hist.min(o.baseline_max_minutes);
    let (mean, sd) = b.stats(lo, day_start);
    let weeks = (day_start - lo) / (7 * 1440);
    if weeks >= o.seasonal_weeks {
        // The same hour of the week, in each of the trailing weeks.
        let abs = minute0 + t as i64;
        let hour_start = abs - abs.rem_euclid(60);
        let (mut n, mut s, mut q) = (0.0, 0.0, 0.0);
        for w in 1..=weeks {
            let start = hour_start - (w * 7 * 1440) as i64 - minute0;
            if start < lo as i64 || start + 60 > day_start as i64 {
                continue;
            }
            let (dn, ds, dq) = b.range(start as usize, start as usize + 60);
            n += dn;
            s += ds;
            q += dq;
        }
        if n > 0.0 {
            let m = s / n;
            return Some((m, (q / n - m * m).max(0.0).sqrt().max(sd * 0.5)));
        }
    }
    Some((mean, sd))
}

/// Finds the anomalies of one series: `counts[i]` is the count of minute
/// `minute0 + i`; `first` is the first minute with history (before it the
/// series did not exist, or the store held nothing).
pub fn detect(counts: &[u32], minute0: i64, first: usize, o: &DetectOptions) -> Vec<Anomaly> {
    let b = Baseline::new(counts);
    let mut out: Vec<Anomaly> = Vec::new();
    let mut open: Option<Anomaly> = None;
    let mut inside = 0usize;
    let mut low_run = 0usize;
    // The baseline changes once a day; its seasonal part once an hour.
    let mut cached: Option<((usize, i64), Option<Band>)> = None;
    for t in 0..counts.len() {
        let abs = minute0 + t as i64;
        let day_start = (t as i64 - abs.rem_euclid(1440)).max(0) as usize;
        let key = (day_start, abs.div_euclid(60));
        let e = match cached {
            Some((k, e)) if k == key => e,
            _ => {
                let e = expect(&b, t, day_start, first, minute0, o);
                cached = Some((key, e));
                e
            }
        };
        let Some((mean, sd)) = e else { continue };
        let spread = sd.max(mean.sqrt()).max(1.0);
        let upper = (mean + o.sensitivity * spread).max(mean * o.spike_ratio).max(mean + o.spike_min_excess);
        let steady = mean >= o.drop_min_rate && sd <= mean * 0.5;
        let lower = mean * o.drop_ratio;
        let c = f64::from(counts[t]);
        match &mut open {
            Some(a) => {
                let back = match a.direction {
                    Direction::Spike => c <= upper,
                    Direction::Drop => c > lower,
                };
                inside = if back { inside + 1 } else { 0 };
                if inside >= o.close_minutes {
                    a.end = Some(t + 1 - inside);
                    out.push(open.take().expect("open"));
                    inside = 0;
                }
            }
            None => {
                // Spike: enough of the last minutes above the band.
                let window = o.spike_minutes.max(1) + 1;
                let above = (t.saturating_sub(window - 1)..=t).filter(|&i| f64::from(counts[i]) > upper).count();
                if c > upper && above >= o.spike_minutes {
                    let start = (t.saturating_sub(window - 1)..=t).find(|&i| f64::from(counts[i]) > upper).unwrap_or(t);
                    open = Some(Anomaly { direction: Direction::Spike, start, end: None, expected: mean });
                    low_run = 0;
                    inside = 0;
                    continue;
                }
                low_run = if steady && c <= lower { low_run + 1 } else { 0 };
                if low_run >= o.drop_minutes {
                    open = Some(Anomaly { direction: Direction::Drop, start: t + 1 - low_run, end: None, expected: mean });
                    low_run = 0;
                    inside = 0;
                }
            }
        }
    }
    if let Some(a) = open {
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic, noisy steady series: about `rate` per minute.
    fn steady(minutes: usize, rate: u32, seed: u64) -> Vec<u32> {
        let mut s = seed;
        (0..minutes)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let jitter = (s >> 33) % (u64::from(rate) / 2 + 1);
                rate - rate / 4 + jitter as u32
            })
            .collect()
    }

    const WEEK: usize = 7 * 1440;

    // Goal: a steady week (and a daily cycle) yields no insight.
    #[test]
    fn steady_week_has_no_insight() {
        let o = DetectOptions::default();
        assert!(detect(&steady(WEEK, 20, 1), 0, 0, &o).is_empty());
        let cyclic: Vec<u32> = steady(2 * WEEK, 20, 2).iter().enumerate().map(|(i, &c)| if (i % 1440) < 480 { c / 4 } else { c }).collect();
        assert!(detect(&cyclic, 0, 0, &o).is_empty(), "{:?}", detect(&cyclic, 0, 0, &o));
        let rare: Vec<u32> = (0..WEEK).map(|i| u32::from(i % 97 == 0)).collect();
        assert!(detect(&rare, 0, 0, &o).is_empty());
    }

    // Goal: a 20x spike for 15 minutes gives exactly one insight, opened
    // within 5 minutes of its start and closed after it.
    #[test]
    fn spike_is_one_insight() {
        let mut c = steady(3 * 1440, 10, 3);
        let at = 2 * 1440 + 600;
        for m in &mut c[at..at + 15] {
            *m *= 20;
        }
        let found = detect(&c, 0, 0, &DetectOptions::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert_eq!(a.direction, Direction::Spike);
        assert!(a.start >= at && a.start < at + 5, "start {} vs {at}", a.start);
        assert_eq!(a.end, Some(at + 15));
    }

    // Goal: a steady API dropping to zero gives a drop insight that closes
    // when it comes back; no history, no baseline, no insight.
    #[test]
    fn drop_to_zero() {
        let mut c = steady(3 * 1440, 20, 4);
        let at = 2 * 1440 + 100;
        for m in &mut c[at..at + 30] {
            *m = 0;
        }
        let found = detect(&c, 0, 0, &DetectOptions::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].direction, Direction::Drop);
        assert_eq!(found[0].start, at);
        assert_eq!(found[0].end, Some(at + 30));
        assert!(detect(&c[at - 100..], 0, 0, &DetectOptions::default()).is_empty(), "under a day of history");
    }
}
