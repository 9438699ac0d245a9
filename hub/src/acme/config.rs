//! `[[resolver]]` in hub.toml: Traefik's `certificatesResolvers.<name>.acme` with a DNS
//! challenge through Cloudflare, the way the seed's Traefik gets Let's Encrypt
//! certificates. The API token comes from the same place lego/Traefik users already
//! keep it: `CF_DNS_API_TOKEN` (or `CF_DNS_API_TOKEN_FILE`), or `token_file`.

use rabble_shared::support::config::ConfigError;
use rabble_shared::support::duration::GoDuration;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4";

/// As written in hub.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverFile {
    /// The name routers use: `tls.certresolver=<name>`.
    pub name: String,
    pub email: Option<String>,
    /// The ACME directory (default Let's Encrypt; `staging` for its staging CA).
    pub ca_server: Option<String>,
    /// A root to trust for the ACME directory's HTTPS (a private ACME CA), instead of
    /// the system's.
    pub ca_root: Option<PathBuf>,
    /// Only `cloudflare` (DNS-01).
    pub dns_provider: Option<String>,
    /// Where to look for the challenge record before telling the CA (Traefik's
    /// `dnsChallenge.resolvers`; default 1.1.1.1 and 8.8.8.8).
    #[serde(default)]
    pub dns_resolvers: Vec<String>,
    /// How long to wait for the record to show there (default 2m).
    pub propagation_timeout: Option<GoDuration>,
    /// Cloudflare's API base (for a stand-in in tests).
    pub cloudflare_api: Option<String>,
    /// A file holding the Cloudflare API token (else `CF_DNS_API_TOKEN_FILE` or
    /// `CF_DNS_API_TOKEN`).
    pub token_file: Option<PathBuf>,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A resolver, checked.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub name: String,
    pub email: Option<String>,
    pub directory: String,
    pub ca_root: Option<PathBuf>,
    pub dns_resolvers: Vec<SocketAddr>,
    pub propagation_timeout: Duration,
    pub cloudflare_api: String,
    pub token: Secret,
}

fn field(name: &str, message: String) -> ConfigError {
    ConfigError::Field { field: "resolver", message: format!("{name:?}: {message}") }
}

impl ResolverFile {
    /// Checks one entry; `env` reads the environment (a parameter so tests need not
    /// touch the process's).
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolver, ConfigError> {
        let name = self.name;
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
            return Err(field(&name, "name: use letters, digits, - and _ (1 to 64)".into()));
        }
        match self.dns_provider.as_deref().unwrap_or("cloudflare") {
            "cloudflare" => {}
            other => return Err(field(&name, format!("dns_provider {other:?}: only \"cloudflare\" is supported"))),
        }
        let directory = match self.ca_server.as_deref() {
            None | Some("") | Some("production") => LETS_ENCRYPT.to_owned(),
            Some("staging") => LETS_ENCRYPT_STAGING.to_owned(),
            Some(u) if u.starts_with("https://") => u.to_owned(),
            Some(u) => return Err(field(&name, format!("ca_server {u:?}: an https:// directory URL"))),
        };
        let dns_resolvers = if self.dns_resolvers.is_empty() {
            vec![([1, 1, 1, 1], 53).into(), ([8, 8, 8, 8], 53).into()]
        } else {
            self.dns_resolvers
                .iter()
                .map(|r| {
                    r.parse::<SocketAddr>()
                        .or_else(|_| r.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                        .map_err(|_| field(&name, format!("dns_resolvers: {r:?} is not ip or ip:port")))
                })
                .collect::<Result<_, _>>()?
        };
        let token_text = match (self.token_file, env("CF_DNS_API_TOKEN_FILE"), env("CF_DNS_API_TOKEN")) {
            (Some(f), _, _) => rabble_shared::support::config::read_secret(&f)?,
            (None, Some(f), _) => rabble_shared::support::config::read_secret(std::path::Path::new(&f))?,
            (None, None, Some(t)) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                return Err(field(
                    &name,
                    "no Cloudflare API token: set CF_DNS_API_TOKEN (or CF_DNS_API_TOKEN_FILE), or token_file \
                     (a token with Zone:Read and DNS:Edit)"
                        .into(),
                ));
            }
        };
        let cloudflare_api = self.cloudflare_api.unwrap_or_else(|| CLOUDFLARE_API.to_owned());
        if !cloudflare_api.starts_with("https://") && !cloudflare_api.starts_with("http://") {
            return Err(field(&name, format!("cloudflare_api {cloudflare_api:?}: an http(s):// URL")));
        }
        Ok(Resolver {
            name,
            email: self.email.filter(|e| !e.is_empty()),
            directory,
            ca_root: self.ca_root,
            dns_resolvers,
            propagation_timeout: self.propagation_timeout.map_or(Duration::from_secs(120), |d| d.0),
            cloudflare_api: cloudflare_api.trim_end_matches('/').to_owned(),
            token: Secret(token_text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> ResolverFile {
        ResolverFile { name: name.into(), ..Default::default() }
    }

    #[test]
    fn defaults_token_sources_and_errors() {
        let env = |k: &str| (k == "CF_DNS_API_TOKEN").then(|| "tok-123".to_owned());
        let r = file("le").resolve(&env).unwrap();
        assert_eq!((r.directory.as_str(), r.dns_resolvers.len()), (LETS_ENCRYPT, 2));
        assert_eq!(r.token.0, "tok-123");
        assert!(!format!("{r:?}").contains("tok-123"), "the token is printed");
        let staging = ResolverFile { ca_server: Some("staging".into()), ..file("le") };
        assert_eq!(staging.resolve(&env).unwrap().directory, LETS_ENCRYPT_STAGING);
        let none = |_: &str| None;
        let e = file("le").resolve(&none).unwrap_err().to_string();
        assert!(e.contains("\"le\"") && e.contains("CF_DNS_API_TOKEN"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cf");
        std::fs::write(&f, "from-file\n").unwrap();
        let r = ResolverFile { token_file: Some(f), ..file("le") }.resolve(&none).unwrap();
        assert_eq!(r.token.0, "from-file");
        for (bad, why) in [
            (ResolverFile { dns_provider: Some("route53".into()), ..file("le") }, "only \"cloudflare\""),
            (ResolverFile { ca_server: Some("http://x/dir".into()), ..file("le") }, "https://"),
            (ResolverFile { dns_resolvers: vec!["nope".into()], ..file("le") }, "not ip or ip:port"),
            (file("bad name"), "letters, digits"),
        ] {
            let e = bad.resolve(&env).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
