//! Named profiles from the AWS CLI's shared files, so that a machine set
//! up with `aws configure` delivers without exporting anything.
//!
//! Read as the AWS CLI and SDKs read them: the profile is `AWS_PROFILE`,
//! else `default`; its keys come from the credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, section
//! `[NAME]`) and then the config file (`AWS_CONFIG_FILE`, else
//! `~/.aws/config`, section `[default]` or `[profile NAME]`); a key in
//! the credentials file wins. Used: `aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`, `region` and
//! `endpoint_url`. Credentials in `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` take precedence over any profile's, as they do
//! for the AWS CLI, and the profile's region and endpoint still apply.
//!
//! Profiles that obtain credentials by running something (`sso_*`,
//! `role_arn`, `credential_process`, `web_identity_token_file`) are not
//! followed: their credentials are refused with the command that exports
//! them instead (`aws configure export-credentials`). Which source wins
//! is botocore's: a role, web identity or SSO over the profile's keys,
//! keys in the credentials file over `credential_process`, and
//! `credential_process` over keys in the config file, so Cairn never
//! signs with keys the AWS CLI would not use.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// One section's keys (lower case) and values.
type Section = BTreeMap<String, String>;

/// `[section]` headers and `key = value` lines of an AWS shared file.
/// Indented lines (a nested block such as `s3 =` followed by
/// `  addressing_style = path`) and comments (`#`, `;`) are skipped.
fn parse(text: &str) -> BTreeMap<String, Section> {
    let mut out: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone()).or_default().insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// What a profile says about reaching S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// The key through which the profile's credentials come from
    /// elsewhere (`role_arn`, `sso_session`, ...), when it wins over the
    /// profile's own keys: its [`Profile::credentials`] are refused.
    pub indirect: Option<String>,
}

/// Keys that mean "credentials come from elsewhere", and win over the
/// keys a profile also has (botocore's provider order).
const INDIRECT: [&str; 4] = ["role_arn", "web_identity_token_file", "sso_session", "sso_start_url"];

/// Static keys: (access key id, secret access key, session token).
pub type Keys<'a> = (&'a str, &'a str, Option<&'a str>);

impl Profile {
    /// The profile's own keys, `None` if it has none; an error naming
    /// what to do when its credentials come from a role, SSO or a process,
    /// or when only half of a key pair is there.
    pub fn credentials(&self) -> Result<Option<Keys<'_>>> {
        let name = &self.name;
        if let Some(k) = &self.indirect {
            bail!(
                "AWS profile {name} gets its credentials through {k}, which Cairn does not run: export them first, e.g. eval \"$(aws configure export-credentials --profile {name} --format env)\""
            );
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => Ok(Some((id, secret, self.session_token.as_deref()))),
            (None, None) => Ok(None),
            _ => bail!("AWS profile {name} has only one of aws_access_key_id and aws_secret_access_key"),
        }
    }
}

fn file(env: &dyn Fn(&str) -> Option<String>, var: &str, default: &str) -> Option<PathBuf> {
    env(var).map(PathBuf::from).or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws").join(default)))
}

fn read(path: &Option<PathBuf>) -> Result<BTreeMap<String, Section>> {
    let Some(path) = path else { return Ok(BTreeMap::new()) };
    match std::fs::read(path) {
        Ok(b) => Ok(parse(&String::from_utf8_lossy(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The profile in effect, with `env` as the environment: `None` when no
/// profile was asked for (`AWS_PROFILE` unset) and `default` is in
/// neither file. An asked-for profile that is missing is an error naming
/// the files looked in; whether its credentials can be used is
/// [`Profile::credentials`]'s to say.
pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Profile>> {
    // botocore's order: AWS_DEFAULT_PROFILE, then AWS_PROFILE.
    let asked = env("AWS_DEFAULT_PROFILE").or_else(|| env("AWS_PROFILE"));
    let name = asked.clone().unwrap_or_else(|| "default".into());
    let creds_path = file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_path = file(env, "AWS_CONFIG_FILE", "config");
    let creds = read(&creds_path)?;
    let config = read(&config_path)?;
    let config_section = if name == "default" { "default".to_string() } else { format!("profile {name}") };
    let (a, b) = (creds.get(&name), config.get(&config_section).or_else(|| config.get("profile default").filter(|_| name == "default")));
    if a.is_none() && b.is_none() {
        if asked.is_some() {
            bail!(
                "AWS_PROFILE={name}: no [{name}] in {} and no [{config_section}] in {}",
                creds_path.map(|p| p.display().to_string()).unwrap_or_else(|| "the credentials file".into()),
                config_path.map(|p| p.display().to_string()).unwrap_or_else(|| "the config file".into())
            );
        }
        return Ok(None);
    }
    let get = |k: &str| a.and_then(|s| s.get(k)).or_else(|| b.and_then(|s| s.get(k))).filter(|v| !v.is_empty()).cloned();
    let in_creds_file = a.is_some_and(|s| s.get("aws_access_key_id").is_some_and(|v| !v.is_empty()));
    let indirect = INDIRECT
        .iter()
        .find(|k| get(k).is_some())
        .or_else(|| Some(&"credential_process").filter(|k| !in_creds_file && get(k).is_some()))
        .map(|k| k.to_string());
    Ok(Some(Profile {
        name,
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
        indirect,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    // Goal: profiles are read as the AWS CLI reads them: the credentials
    // file wins over the config file, `[profile NAME]` in the config file,
    // nested blocks and comments ignored; a missing asked-for profile is
    // refused by name; credentials that come from a role, SSO or a process
    // are refused by name whenever botocore would use them rather than
    // the profile's keys, and the profile's region and endpoint stay
    // readable for use with keys from the environment.
    #[test]
    fn profiles() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "# keys\n[default]\naws_access_key_id = AKIDEFAULT\naws_secret_access_key = s1\n\n[ops]\nAWS_ACCESS_KEY_ID=AKIOPS\naws_secret_access_key = s2 \naws_session_token = tok\n\n[proc]\naws_access_key_id = AKIPROC\naws_secret_access_key = s3\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile ops]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9000\ns3 =\n  addressing_style = path\n  region = nope\n\
             [profile sso]\nsso_session = corp\nregion = ap-south-1\nendpoint_url = http://sso.example:9000\n\
             [profile half]\naws_access_key_id = AKIHALF\n\
             [profile role]\naws_access_key_id = AKIROLE\naws_secret_access_key = s4\nrole_arn = arn:aws:iam::1:role/r\n\
             [profile proc]\ncredential_process = /bin/creds\n\
             [profile cfgproc]\naws_access_key_id = AKICFG\naws_secret_access_key = s5\ncredential_process = /bin/creds\n",
        )
        .unwrap();
        let base = vec![("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()), ("AWS_CONFIG_FILE", config.display().to_string())];
        let with = |profile: &str| {
            let mut e = base.clone();
            e.push(("AWS_PROFILE", profile.into()));
            load(&env_of(&e))
        };
        let p = load(&env_of(&base)).unwrap().unwrap();
        assert_eq!((p.credentials().unwrap(), p.region.as_deref()), (Some(("AKIDEFAULT", "s1", None)), Some("eu-west-1")));
        let p = with("ops").unwrap().unwrap();
        assert_eq!(
            p,
            Profile {
                name: "ops".into(),
                access_key_id: Some("AKIOPS".into()),
                secret_access_key: Some("s2".into()),
                session_token: Some("tok".into()),
                region: Some("eu-central-1".into()),
                endpoint_url: Some("http://127.0.0.1:9000".into()),
                indirect: None,
            }
        );
        assert!(with("missing").unwrap_err().to_string().contains("no [missing]"));
        // Keys in the credentials file win over credential_process.
        assert_eq!(with("proc").unwrap().unwrap().credentials().unwrap(), Some(("AKIPROC", "s3", None)));
        for (profile, needle) in [
            ("sso", "through sso_session"),
            ("role", "through role_arn"),
            ("cfgproc", "through credential_process"),
            ("half", "only one of"),
        ] {
            let p = with(profile).unwrap().unwrap();
            let err = p.credentials().unwrap_err().to_string();
            assert!(err.contains(needle), "{profile}: {err}");
            if profile != "half" {
                assert!(err.contains(&format!("export-credentials --profile {profile}")), "{err}");
            }
        }
        // An SSO profile still gives its region and endpoint.
        let sso = with("sso").unwrap().unwrap();
        assert_eq!((sso.region.as_deref(), sso.endpoint_url.as_deref()), (Some("ap-south-1"), Some("http://sso.example:9000")));
        // Nothing asked for and no default anywhere: no profile.
        let none = vec![("HOME", dir.path().join("nowhere").display().to_string())];
        assert_eq!(load(&env_of(&none)).unwrap(), None);
    }
}
