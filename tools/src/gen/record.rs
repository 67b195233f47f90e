//! Writing one record of the standard profile: API calls and console
//! sign-ins, their envelope, the caller's identity and its sessions.

use super::catalog::Kind::{Role, Root, Service, User};
use super::catalog::{
    Principal, RequestId, ACCOUNTS, AGENTS, ANY, APIS, BROWSERS, INVOKERS, IPS, N, PRINCIPALS, REGIONS, ROLES, SERVICES, USERS,
};
use super::rng::{id64, ident_hash, mix, GOLDEN};
use super::time::put_iso;
use super::write::{put, put_chars, put_hex16, put_uuid, ALNUM, B32};
use super::{Generator, PadAt, P_CONSOLE_SESSION, P_ERROR, P_HOME_REGION, P_STRAY_IP};

impl Generator {
    pub(super) fn api_call(&mut self, out: &mut Vec<u8>, p: usize, api_idx: usize) {
        let pr = &PRINCIPALS[p];
        let api = &APIS[api_idx];
        let svc = &SERVICES[api.svc];
        let acct = if pr.acct == ANY { self.accounts.pick(&mut self.rng) } else { pr.acct };
        self.ev.principal = p;
        self.ev.api = api_idx;
        self.ev.svc = api.svc;
        self.ev.acct = acct;
        self.ev.region = if svc.global {
            "us-east-1"
        } else if self.rng.chance(P_HOME_REGION) {
            ACCOUNTS[acct].home
        } else {
            REGIONS[self.rng.skew(REGIONS.len())]
        };
        // Console sessions: root always, people sometimes; half of their
        // calls are made by the console's back end ("AWS Internal").
        let console = pr.kind == Root || pr.human && self.rng.chance(P_CONSOLE_SESSION);
        let internal = console && self.rng.below(2) == 0;
        let error = pr.kind != Service && self.rng.chance(P_ERROR);

        self.head(out);
        self.identity(out, pr, console);
        self.time_source_name(out, svc.source, api.name);
        let (ip, agent) = if pr.kind == Service {
            (INVOKERS[pr.idx], INVOKERS[pr.idx])
        } else if !pr.via.is_empty() {
            (pr.via, pr.via)
        } else if internal {
            ("AWS Internal", "AWS Internal")
        } else {
            let ip = if self.rng.chance(P_STRAY_IP) {
                IPS[self.rng.below(IPS.len() as u64) as usize]
            } else {
                IPS[(pr.ips.0 + self.rng.skew(pr.ips.1.max(1))) % IPS.len()]
            };
            let agent = if console {
                AGENTS[BROWSERS[self.rng.below(2) as usize]]
            } else {
                AGENTS[pr.agents.get(self.rng.skew(pr.agents.len().max(1))).copied().unwrap_or(0)]
            };
            (ip, agent)
        };
        put(out, r#"","sourceIPAddress":""#);
        put(out, ip);
        put(out, r#"","userAgent":""#);
        put(out, agent);
        out.push(b'"');
        if error {
            let errors = svc.errors;
            let total: u32 = errors.iter().map(|e| e.2).sum();
            let mut r = self.rng.below(u64::from(total)) as u32;
            let (code, message) = errors
                .iter()
                .find(|e| {
                    let hit = r < e.2;
                    r = r.saturating_sub(e.2);
                    hit
                })
                .map_or(("AccessDenied", "Access Denied"), |e| (e.0, e.1));
            put(out, r#","errorCode":""#);
            put(out, code);
            put(out, r#"","errorMessage":""#);
            self.render(out, message);
            out.push(b'"');
        }
        put(out, r#","requestParameters":"#);
        let req_start = out.len();
        self.render(out, api.req);
        self.ev.pad_at = if api.req == N {
            PadAt::ReplaceNull { at: req_start }
        } else {
            PadAt::Insert { at: out.len() - 1, comma: out.len() - req_start > 2 }
        };
        put(out, r#","responseElements":"#);
        self.render(out, if error { N } else { api.resp });
        if !api.extra.is_empty() {
            put(out, r#","additionalEventData":"#);
            self.render(out, api.extra);
        }
        put(out, r#","requestID":""#);
        match svc.request_id {
            RequestId::Uuid => self.uuid(out),
            RequestId::S3 => put_chars(out, self.rng.next(), 16, ALNUM),
            RequestId::Dynamo => put_chars(out, self.rng.next(), 52, ALNUM),
        }
        put(out, r#"","eventID":""#);
        self.uuid(out);
        put(out, if api.read_only { r#"","readOnly":true"# } else { r#"","readOnly":false"# });
        if !api.res.is_empty() && !error {
            put(out, r#","resources":["#);
            self.render(out, api.res);
            out.push(b']');
        }
        put(out, r#","eventType":"AwsApiCall","managementEvent":"#);
        put(out, if api.is_data() { "false" } else { "true" });
        put(out, r#","recipientAccountId":""#);
        put(out, ACCOUNTS[acct].id);
        out.push(b'"');
        if ip.starts_with("10.") || ip.starts_with("172.31.") {
            // Calls through an interface VPC endpoint.
            put(out, r#","vpcEndpointId":"vpce-0"#);
            put_hex16(out, id64(b'E', acct, 0));
            put(out, r#"","vpcEndpointAccountId":""#);
            put(out, ACCOUNTS[acct].id);
            out.push(b'"');
        }
        put(out, if api.is_data() { r#","eventCategory":"Data""# } else { r#","eventCategory":"Management""# });
        // Calls made inside AWS on a principal's behalf carry no TLS details.
        if pr.kind != Service && pr.via.is_empty() && !internal {
            self.tls(out, svc.host);
        }
        if console {
            put(out, r#","sessionCredentialFromConsole":"true""#);
        }
        out.push(b'}');
    }

    pub(super) fn console_login(&mut self, out: &mut Vec<u8>, p: usize, failed: bool) {
        let pr = &PRINCIPALS[p];
        let acct = if pr.acct == ANY { self.accounts.pick(&mut self.rng) } else { pr.acct };
        self.ev.principal = p;
        self.ev.acct = acct;
        self.ev.region = "us-east-1";
        let id = ACCOUNTS[acct].id;
        self.head(out);
        if pr.kind == Root {
            put(out, r#"{"type":"Root","principalId":""#);
            put(out, id);
            put(out, r#"","arn":"arn:aws:iam::"#);
            put(out, id);
            put(out, r#":root","accountId":""#);
            put(out, id);
            put(out, if failed { r#"","accessKeyId":""}"# } else { r#""}"# });
        } else if failed && self.rng.below(10) < 3 {
            // An unknown user name is not revealed.
            put(out, r#"{"type":"IAMUser","accountId":""#);
            put(out, id);
            put(out, r#"","accessKeyId":"","userName":"HIDDEN_DUE_TO_SECURITY_REASONS"}"#);
        } else {
            let name = USERS[pr.idx];
            put(out, r#"{"type":"IAMUser","principalId":"AIDA"#);
            put_chars(out, ident_hash(acct, name) ^ 1, 17, B32);
            if failed {
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":"","userName":""#);
            } else {
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, ":user/");
                put(out, name);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","userName":""#);
            }
            put(out, name);
            put(out, r#""}"#);
        }
        self.time_source_name(out, "signin.amazonaws.com", "ConsoleLogin");
        put(out, r#"","sourceIPAddress":""#);
        put(out, IPS[(pr.ips.0 + self.rng.skew(pr.ips.1.max(1))) % IPS.len()]);
        put(out, r#"","userAgent":""#);
        put(out, AGENTS[BROWSERS[self.rng.below(2) as usize]]);
        out.push(b'"');
        if failed {
            put(out, r#","errorMessage":"Failed authentication""#);
        }
        put(out, r#","requestParameters":null,"responseElements":{"ConsoleLogin":""#);
        put(out, if failed { "Failure" } else { "Success" });
        put(
            out,
            r#""},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_"#,
        );
        self.placeholder(out, b'q');
        put(out, r#"","MobileVersion":"No","MFAUsed":""#);
        let mfa = !failed && (pr.kind == Root || self.rng.below(10) < 8);
        put(out, if mfa { "Yes" } else { "No" });
        put(out, r#""}"#);
        self.ev.pad_at = PadAt::Insert { at: out.len() - 1, comma: true };
        put(out, r#","eventID":""#);
        self.uuid(out);
        put(out, r#"","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":""#);
        put(out, id);
        put(out, r#"","eventCategory":"Management""#);
        self.tls(out, "signin.aws.amazon.com");
        out.push(b'}');
    }

    /// `{"eventVersion":"1.xx","userIdentity":`
    fn head(&mut self, out: &mut Vec<u8>) {
        put(out, r#"{"eventVersion":""#);
        put(
            out,
            match self.rng.below(100) {
                0 => "1.05",
                1..=30 => "1.08",
                31..=60 => "1.09",
                61..=85 => "1.10",
                _ => "1.11",
            },
        );
        put(out, r#"","userIdentity":"#);
    }

    /// `,"eventTime":"…","eventSource":"…","eventName":"…","awsRegion":"…` (open quote).
    fn time_source_name(&mut self, out: &mut Vec<u8>, source: &str, name: &str) {
        put(out, r#","eventTime":""#);
        put_iso(out, self.ev.t_ms);
        put(out, r#"","eventSource":""#);
        put(out, source);
        put(out, r#"","eventName":""#);
        put(out, name);
        put(out, r#"","awsRegion":""#);
        put(out, self.ev.region);
    }

    fn tls(&mut self, out: &mut Vec<u8>, host: &str) {
        put(
            out,
            if self.rng.below(4) == 0 {
                r#","tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","clientProvidedHostHeader":""#
            } else {
                r#","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":""#
            },
        );
        self.render(out, host);
        put(out, r#""}"#);
    }

    pub(super) fn uuid(&mut self, out: &mut Vec<u8>) {
        let (a, b) = (self.rng.next(), self.rng.next());
        put_uuid(out, a, b);
    }

    fn identity(&mut self, out: &mut Vec<u8>, pr: &Principal, console: bool) {
        let acct = self.ev.acct;
        let id = ACCOUNTS[acct].id;
        match pr.kind {
            User => {
                let name = USERS[pr.idx];
                let h = ident_hash(acct, name);
                put(out, r#"{"type":"IAMUser","principalId":"AIDA"#);
                put_chars(out, h ^ 1, 17, B32);
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, ":user/");
                put(out, name);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":""#);
                if console {
                    self.session_key(out, h);
                } else {
                    // Long-term keys are stable per user.
                    put(out, "AKIA");
                    put_chars(out, h ^ 2, 16, B32);
                }
                put(out, r#"","userName":""#);
                put(out, name);
                out.push(b'"');
                if console {
                    self.session_context(out, h, "true");
                }
                out.push(b'}');
            }
            Role => {
                let (role, session) = ROLES[pr.idx];
                let h = ident_hash(acct, role);
                put(out, r#"{"type":"AssumedRole","principalId":"AROA"#);
                put_chars(out, h ^ 3, 17, B32);
                out.push(b':');
                put(out, session);
                put(out, r#"","arn":"arn:aws:sts::"#);
                put(out, id);
                put(out, ":assumed-role/");
                put(out, role);
                out.push(b'/');
                put(out, session);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":""#);
                self.session_key(out, h);
                put(out, r#"","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA"#);
                put_chars(out, h ^ 3, 17, B32);
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, ":role/");
                put(out, role);
                put(out, r#"","accountId":""#);
                put(out, id);
                put(out, r#"","userName":""#);
                put(out, role);
                put(out, r#""},"webIdFederationData":{},"attributes":{"creationDate":""#);
                self.session_start(out, h);
                put(out, r#"","mfaAuthenticated":"false"}"#);
                if session.starts_with("i-") {
                    put(out, r#","ec2RoleDelivery":"2.0""#);
                }
                out.push(b'}');
                if !pr.via.is_empty() {
                    put(out, r#","invokedBy":""#);
                    put(out, pr.via);
                    out.push(b'"');
                }
                out.push(b'}');
            }
            Root => {
                put(out, r#"{"type":"Root","principalId":""#);
                put(out, id);
                put(out, r#"","arn":"arn:aws:iam::"#);
                put(out, id);
                put(out, r#":root","accountId":""#);
                put(out, id);
                put(out, r#"","accessKeyId":""#);
                let h = ident_hash(acct, "root");
                self.session_key(out, h);
                out.push(b'"');
                self.session_context(out, h, "true");
                out.push(b'}');
            }
            Service => {
                put(out, r#"{"type":"AWSService","invokedBy":""#);
                put(out, INVOKERS[pr.idx]);
                put(out, r#""}"#);
            }
        }
    }

    /// `,"sessionContext":{…}` of a console session.
    fn session_context(&mut self, out: &mut Vec<u8>, h: u64, mfa: &str) {
        put(out, r#","sessionContext":{"sessionIssuer":{},"webIdFederationData":{},"attributes":{"creationDate":""#);
        self.session_start(out, h);
        put(out, r#"","mfaAuthenticated":""#);
        put(out, mfa);
        put(out, r#""}}"#);
    }

    /// Sessions last an hour, staggered per principal: one ASIA key per
    /// principal and hour, like real temporary credentials.
    fn session_window(&self, h: u64) -> (i64, i64) {
        let phase = (mix(h ^ 5) % 3_600_000) as i64;
        let w = (self.ev.t_ms + phase).div_euclid(3_600_000);
        (w, w * 3_600_000 - phase)
    }

    pub(super) fn session_key(&mut self, out: &mut Vec<u8>, h: u64) {
        let (w, _) = self.session_window(h);
        put(out, "ASIA");
        put_chars(out, mix(h ^ (w as u64).wrapping_mul(GOLDEN)), 16, B32);
    }

    fn session_start(&mut self, out: &mut Vec<u8>, h: u64) {
        let (_, start) = self.session_window(h);
        put_iso(out, start);
    }
}
