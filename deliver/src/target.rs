//! Where delivery writes: an `s3://BUCKET[/PREFIX]` target and the
//! object-store client for it (the `object_store` crate's S3 client:
//! AWS S3 or any S3-compatible server).
//!
//! Credentials and settings come from the usual AWS environment:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile of the AWS CLI's
//! shared files (`AWS_PROFILE`, `~/.aws/credentials`, `~/.aws/config`:
//! [`crate::profile`]), else web identity and container credentials, or
//! the instance's role. The endpoint of an S3-compatible server comes
//! from the options, else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`
//! (the AWS CLI's variables), else the profile's `endpoint_url`; with a custom endpoint
//! requests are path-style (`http://host/bucket/key`) unless
//! virtual-hosted style is asked for.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload, RetryConfig};

use crate::profile::Profile;

/// An `s3://BUCKET[/PREFIX]` delivery target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    /// No leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl FromStr for Target {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Target> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| anyhow!("delivery target {s:?}: expected s3://BUCKET[/PREFIX]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules (the general-purpose subset).
        let ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.as_bytes()[0].is_ascii_alphanumeric()
            && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
        if !ok {
            bail!("delivery target {s:?}: {bucket:?} is not an S3 bucket name (3-63 of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)");
        }
        let prefix = prefix.trim_matches('/').to_string();
        // Only characters every S3 client writes as they are: anything
        // else may be percent-encoded by one and not by another, and
        // digests must name the keys their files have.
        let safe = prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
        if prefix.len() > 512 || !safe || (!prefix.is_empty() && prefix.split('/').any(|c| c.is_empty() || c == "." || c == "..")) {
            bail!("delivery target {s:?}: the prefix must be at most 512 bytes of A-Z, a-z, 0-9, '.', '_', '-' in non-empty path components separated by '/', without . or ..");
        }
        Ok(Target { bucket: bucket.to_string(), prefix })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How to reach the object store (what the environment does not say).
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// An S3-compatible server's URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Virtual-hosted-style requests (`bucket.host`) to a custom endpoint.
    pub virtual_hosted: bool,
}

/// One object to write.
#[derive(Debug, Clone)]
pub struct Put {
    pub key: String,
    pub body: Vec<u8>,
    /// User metadata (`x-amz-meta-<name>`).
    pub metadata: Vec<(&'static str, String)>,
}

/// An object read back: its bytes and user metadata (`x-amz-meta-*`
/// names without the prefix).
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Vec<u8>,
    pub metadata: BTreeMap<String, String>,
}

/// Writes to and reads from one target. Blocking: it owns a small tokio
/// runtime for the async client, so callers stay plain threads.
pub struct Sink {
    pub target: Target,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    /// The store keeps no user metadata (a local directory): an object's
    /// metadata goes beside it, as JSON in `<key>.metadata.json`.
    metadata_beside: bool,
}

/// An object store error, with what to do when the server refused the
/// credentials (the server's own message, e.g. S3's
/// `SignatureDoesNotMatch` or `InvalidAccessKeyId`, stays in it).
fn explain(e: object_store::Error) -> String {
    match e {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => format!(
            "the server refused the credentials or their permissions (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and ~/.aws/credentials, and that they may read and write the bucket): {e}"
        ),
        e => e.to_string(),
    }
}

/// PUTs in flight at once.
const PARALLEL_PUTS: usize = 8;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Sink {
    /// A client for `target`. Does not contact the server (the first
    /// write does, and its error names the problem).
    pub fn connect(target: Target, opts: &SinkOptions) -> Result<Sink> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&target.bucket);
        // Credentials in the environment win over a profile's (whose
        // region and endpoint still apply, as for the AWS CLI); a profile
        // that cannot be read is an error only when its keys are needed.
        let env_keys = env("AWS_ACCESS_KEY_ID").is_some();
        let profile = match crate::profile::load(&env) {
            Ok(p) => p.unwrap_or_default(),
            Err(_) if env_keys => Profile::default(),
            Err(e) => return Err(e),
        };
        if !env_keys {
            if let Some((id, secret, token)) = profile.credentials()? {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(token) = token {
                    b = b.with_token(token);
                }
            }
        }
        let region = opts
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or(profile.region)
            .unwrap_or_else(|| "us-east-1".into());
        b = b.with_region(region);
        if let Some(endpoint) =
            opts.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL_S3")).or_else(|| env("AWS_ENDPOINT_URL")).or(profile.endpoint_url)
        {
            if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                bail!("S3 endpoint {endpoint:?}: expected an http:// or https:// URL");
            }
            b = b
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(opts.virtual_hosted);
        }
        // A few quick retries here; delivery's own loop backs off for longer.
        let retry = RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(30), ..Default::default() };
        let store = b.with_retry(retry).build().with_context(|| format!("configuring the S3 client for {target}"))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the S3 client's runtime")?;
        Ok(Sink { target, store: Arc::new(store), rt, metadata_beside: false })
    }

    /// A sink that writes `target`'s objects under the local directory
    /// `dir` (the bucket's root) instead: for benchmarks and tests of
    /// what delivery writes, without a network. A file system keeps no
    /// user metadata, so a digest's signature metadata is written beside
    /// it in `<key>.metadata.json` (`{"signature": ..., ...}`).
    pub fn local(target: Target, dir: &std::path::Path) -> Result<Sink> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir).with_context(|| format!("opening {}", dir.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the object store's runtime")?;
        Ok(Sink { target, store: Arc::new(store), rt, metadata_beside: true })
    }

    /// Writes every object (some at once); returns after all were
    /// acknowledged, or with the first error (others may have landed:
    /// delivery re-writes them under the same names).
    pub fn put_all(&self, mut objects: Vec<Put>) -> Result<()> {
        if self.metadata_beside {
            let beside: Vec<Put> = objects
                .iter_mut()
                .filter(|p| !p.metadata.is_empty())
                .map(|p| {
                    let meta: serde_json::Map<String, serde_json::Value> =
                        std::mem::take(&mut p.metadata).into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                    Put {
                        key: format!("{}.metadata.json", p.key),
                        body: serde_json::Value::Object(meta).to_string().into_bytes(),
                        metadata: Vec::new(),
                    }
                })
                .collect();
            objects.extend(beside);
        }
        let store = self.store.clone();
        let bucket = self.target.bucket.clone();
        self.rt.block_on(async move {
            let mut puts = futures::stream::iter(objects.into_iter().map(|p| {
                let store = store.clone();
                async move {
                    let mut attributes = Attributes::new();
                    for (k, v) in p.metadata {
                        attributes.insert(Attribute::Metadata(k.into()), v.into());
                    }
                    let opts = PutOptions { attributes, ..Default::default() };
                    store
                        .put_opts(&ObjectPath::from(p.key.as_str()), PutPayload::from(p.body), opts)
                        .await
                        .map(|_| ())
                        .map_err(|e| (p.key, e))
                }
            }))
            .buffer_unordered(PARALLEL_PUTS);
            while let Some(r) = puts.next().await {
                if let Err((key, e)) = r {
                    return Err(anyhow!("writing s3://{bucket}/{key}: {}", explain(e)));
                }
            }
            Ok(())
        })
    }

    /// The object at `key`, or `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let store = self.store.clone();
        self.rt.block_on(async move {
            match store.get(&ObjectPath::from(key)).await {
                Ok(r) => Ok(Some(r.bytes().await.with_context(|| format!("reading s3://{}/{key}", self.target.bucket))?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(anyhow!("reading s3://{}/{key}: {}", self.target.bucket, explain(e))),
            }
        })
    }

    /// The objects at `keys`, in order, each with its user metadata
    /// (`None`: no such object); several read at once. A local sink's
    /// metadata is read from `<key>.metadata.json`.
    pub fn get_all(&self, keys: &[String]) -> Result<Vec<Option<Object>>> {
        let store = self.store.clone();
        let bucket = &self.target.bucket;
        let beside = self.metadata_beside;
        self.rt.block_on(async move {
            let read = |key: String| {
                let store = store.clone();
                async move {
                    let r = match store.get(&ObjectPath::from(key.as_str())).await {
                        Ok(r) => r,
                        Err(object_store::Error::NotFound { .. }) => return Ok(None),
                        Err(e) => return Err(anyhow!("reading s3://{bucket}/{key}: {}", explain(e))),
                    };
                    let mut metadata: BTreeMap<String, String> = r
                        .attributes
                        .iter()
                        .filter_map(|(k, v)| match k {
                            Attribute::Metadata(name) => Some((name.to_string(), v.to_string())),
                            _ => None,
                        })
                        .collect();
                    let body = r.bytes().await.map_err(|e| anyhow!("reading s3://{bucket}/{key}: {e}"))?.to_vec();
                    if beside {
                        if let Ok(m) = store.get(&ObjectPath::from(format!("{key}.metadata.json"))).await {
                            let b = m.bytes().await.map_err(|e| anyhow!("reading s3://{bucket}/{key}.metadata.json: {e}"))?;
                            let map: BTreeMap<String, String> = serde_json::from_slice(&b).unwrap_or_default();
                            metadata.extend(map);
                        }
                    }
                    Ok(Some(Object { body, metadata }))
                }
            };
            futures::stream::iter(keys.iter().cloned().map(read))
                .buffered(PARALLEL_PUTS)
                .collect::<Vec<Result<_>>>()
                .await
                .into_iter()
                .collect()
        })
    }

    /// Every object under `prefix`: key, size and last-modified time
    /// (unix ms), sorted by key.
    pub fn list_meta(&self, prefix: &str) -> Result<Vec<(String, u64, i64)>> {
        let store = self.store.clone();
        let p = ObjectPath::from(prefix);
        self.rt.block_on(async move {
            let mut out = Vec::new();
            let mut s = store.list(Some(&p));
            while let Some(m) = s.next().await {
                let m = m.map_err(|e| anyhow!("listing s3://{}/{prefix}: {}", self.target.bucket, explain(e)))?;
                out.push((m.location.to_string(), m.size, m.last_modified.timestamp_millis()));
            }
            out.sort();
            Ok(out)
        })
    }

    /// Deletes the objects at `keys` (one missing already is no error).
    pub fn delete_all(&self, keys: &[String]) -> Result<()> {
        let store = self.store.clone();
        let bucket = &self.target.bucket;
        self.rt.block_on(async move {
            let mut dels = futures::stream::iter(keys.iter().map(|key| {
                let store = store.clone();
                async move {
                    match store.delete(&ObjectPath::from(key.as_str())).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(anyhow!("deleting s3://{bucket}/{key}: {}", explain(e))),
                    }
                }
            }))
            .buffer_unordered(PARALLEL_PUTS);
            while let Some(r) = dels.next().await {
                r?;
            }
            Ok(())
        })
    }

    /// Uploads the local file `path` as `key`, in parts of 16 MiB (a
    /// multipart upload) when it is larger, so memory stays bounded.
    pub fn put_file(&self, key: &str, path: &std::path::Path) -> Result<()> {
        const PART: usize = 16 << 20;
        let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
        if len <= PART as u64 {
            let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            return self.put_all(vec![Put { key: key.to_string(), body, metadata: Vec::new() }]);
        }
        let store = self.store.clone();
        let bucket = &self.target.bucket;
        let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        self.rt.block_on(async move {
            let fail = |e: object_store::Error| anyhow!("writing s3://{bucket}/{key}: {}", explain(e));
            let upload = store.put_multipart(&ObjectPath::from(key)).await.map_err(fail)?;
            let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0u8; PART];
            let written: Result<()> = loop {
                let n = match std::io::Read::read(&mut file, &mut buf) {
                    Ok(n) => n,
                    Err(e) => break Err(anyhow!("reading {}: {e}", path.display())),
                };
                if n == 0 {
                    break Ok(());
                }
                if let Err(e) = w.wait_for_capacity(2).await {
                    break Err(fail(e));
                }
                w.write(&buf[..n]);
            };
            match written {
                Ok(()) => w.finish().await.map(|_| ()).map_err(fail),
                Err(e) => {
                    // The parts uploaded so far would otherwise stay (billed)
                    // until a lifecycle rule removes them.
                    let _ = w.abort().await;
                    Err(e)
                }
            }
        })
    }

    /// Every key under `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.list_meta(prefix)?.into_iter().map(|(key, _, _)| key).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: targets parse as S3 URLs and bad ones are refused with the rule.
    #[test]
    fn targets() {
        assert_eq!("s3://my-bucket".parse::<Target>().unwrap(), Target { bucket: "my-bucket".into(), prefix: String::new() });
        let t: Target = "s3://logs.example/a/b/".parse().unwrap();
        assert_eq!((t.bucket.as_str(), t.prefix.as_str(), t.to_string().as_str()), ("logs.example", "a/b", "s3://logs.example/a/b"));
        for bad in [
            "my-bucket",
            "s3://",
            "s3://ab",
            "s3://Upper",
            "s3://b_x/p",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://bucket/a b",
            "s3://bucket/a%20",
        ] {
            let e = bad.parse::<Target>().unwrap_err().to_string();
            assert!(e.contains("delivery target"), "{bad}: {e}");
        }
    }

    // Goal: a file larger than one part goes up as a multipart upload and
    // reads back byte for byte; listing, metadata and deleting see it.
    #[test]
    fn put_file_in_parts_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::local("s3://bkt/p".parse().unwrap(), &dir.path().join("bucket")).unwrap();
        let path = dir.path().join("big");
        let body: Vec<u8> = (0..(40u32 << 20) / 4).flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()).collect();
        std::fs::write(&path, &body).unwrap();
        sink.put_file("p/x/big.parquet", &path).unwrap();
        let got = sink.get_all(&["p/x/big.parquet".to_string()]).unwrap();
        assert!(got[0].as_ref().is_some_and(|o| o.body == body), "reads back");
        let listed = sink.list_meta("p/x").unwrap();
        assert_eq!(listed.iter().map(|(k, n, _)| (k.as_str(), *n)).collect::<Vec<_>>(), vec![("p/x/big.parquet", body.len() as u64)]);
        sink.delete_all(&["p/x/big.parquet".to_string(), "p/x/absent".to_string()]).unwrap();
        assert!(sink.list("p/x").unwrap().is_empty());
    }
}
