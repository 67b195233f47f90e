//! The cache of decoded blocks, shared by every reader of segments
//! (queries, proofs, verify): warm reads decode nothing. First in, first
//! out, bounded in decoded bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Error;
use crate::segment::reader::Segment;
use crate::segment::Block;

/// A cache of decoded blocks, shared by queries: warm queries decode nothing.
pub struct BlockCache {
    inner: Mutex<CacheInner>,
    capacity_bytes: usize,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<(u64, u32), Arc<Block>>,
    fifo: VecDeque<(u64, u32)>,
    bytes: usize,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self { inner: Mutex::new(CacheInner::default()), capacity_bytes }
    }

    /// Bytes of decoded blocks held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    pub fn get(&self, seg: &Segment, block: usize) -> Result<Arc<Block>, Error> {
        let key = (seg.id, block as u32);
        if let Some(b) = self.inner.lock().map.get(&key) {
            return Ok(b.clone());
        }
        let b = Arc::new(seg.read_block(block)?);
        let size = b.data.len() + b.len() * 32;
        let mut c = self.inner.lock();
        if size <= self.capacity_bytes && c.map.insert(key, b.clone()).is_none() {
            c.fifo.push_back(key);
            c.bytes += size;
            while c.bytes > self.capacity_bytes {
                let Some(old) = c.fifo.pop_front() else { break };
                if let Some(ob) = c.map.remove(&old) {
                    c.bytes -= ob.data.len() + ob.len() * 32;
                }
            }
        }
        Ok(b)
    }
}
