//! `rabble-hub tls init`: a private CA and a hub certificate signed by it (rcgen on
//! ring), for homelabs with no PKI of their own. The CA's certificate goes to every
//! agent (`ca = "/etc/rabble/ca.pem"`); its key can then be kept offline.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long both certificates are valid, in years.
pub const VALID_YEARS: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0}: already exists (remove it, or pick another --dir)")]
    Exists(PathBuf),
    #[error("{path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error("certificate for {names:?}: {error}")]
    Cert { names: Vec<String>, error: rcgen::Error },
}

/// The files `init` writes into a directory.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub hub_cert: PathBuf,
    pub hub_key: PathBuf,
}

impl PkiFiles {
    pub fn in_dir(dir: &Path) -> PkiFiles {
        PkiFiles {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            hub_cert: dir.join("hub.pem"),
            hub_key: dir.join("hub.key"),
        }
    }
}

fn this_year() -> i32 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    1970 + (secs / 31_556_952) as i32
}

/// Creates the CA and a hub certificate valid for `names` (DNS names or IP addresses,
/// which become the certificate's subject alternative names). Refuses to overwrite.
pub fn init(dir: &Path, names: &[String]) -> Result<PkiFiles, PkiError> {
    let files = PkiFiles::in_dir(dir);
    for p in [&files.ca_cert, &files.ca_key, &files.hub_cert, &files.hub_key] {
        if p.exists() {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let cert_err = |error| PkiError::Cert { names: names.to_vec(), error };
    let year = this_year();
    let (from, until) = (rcgen::date_time_ymd(year, 1, 1), rcgen::date_time_ymd(year + VALID_YEARS, 1, 1));

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "Rabble private CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Rabble homelab");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    (ca.not_before, ca.not_after) = (from, until);
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(cert_err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let mut hub = CertificateParams::new(names.to_vec()).map_err(cert_err)?;
    hub.distinguished_name.push(DnType::CommonName, names.first().map_or("rabble-hub", String::as_str));
    hub.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    hub.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    hub.use_authority_key_identifier_extension = true;
    (hub.not_before, hub.not_after) = (from, until);
    let hub_key = KeyPair::generate().map_err(cert_err)?;
    let hub_cert = hub.signed_by(&hub_key, &issuer).map_err(cert_err)?;

    std::fs::create_dir_all(dir).map_err(|error| PkiError::Write { path: dir.to_owned(), error })?;
    write(&files.ca_cert, &ca_cert.pem(), 0o644)?;
    write(&files.ca_key, &ca_key_pem, 0o600)?;
    write(&files.hub_cert, &hub_cert.pem(), 0o644)?;
    write(&files.hub_key, &hub_key.serialize_pem(), 0o600)?;
    Ok(files)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let go = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    go().map_err(|error| PkiError::Write { path: path.to_owned(), error })
}

/// Names a hub certificate should carry by default: the host's name, and loopback.
pub fn default_names() -> Vec<String> {
    let mut names: Vec<String> = sysinfo::System::host_name().ok().into_iter().collect();
    names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_a_hub_cert_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["hub.lan".to_owned(), "192.168.1.10".to_owned()];
        let f = init(dir.path(), &names).unwrap();
        let hub = std::fs::read_to_string(&f.hub_cert).unwrap();
        assert!(hub.starts_with("-----BEGIN CERTIFICATE-----"), "{hub}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&f.hub_key).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(init(dir.path(), &names), Err(PkiError::Exists(_))));
    }
}
