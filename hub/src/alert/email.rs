//! The email receiver's mailer: lettre's SMTP client on tokio and rustls (ring), STARTTLS
//! required on the submission port (587, 25) and implicit TLS on 465 — never plain text,
//! so credentials and alerts do not cross the LAN in clear — with AUTH when a username is
//! given, the server's certificate checked against the system's roots or `ca_file`, a
//! 10 s deadline. A message is built from the core's request (`From`, `To`, `Subject`,
//! the text); the password lives only in the transport.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rabble_core::alert::payload::Request;
use std::time::Duration;

/// How to reach one SMTP server.
#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A CA (PEM) to check the server with instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "SmtpServer({}:{}, user {:?})", self.host, self.port, self.username)
    }
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// A mailer for each email receiver that can have one (one that cannot is logged).
pub fn mailers(servers: &[(String, SmtpServer)]) -> std::collections::HashMap<String, Mailer> {
    let mut out = std::collections::HashMap::new();
    for (name, server) in servers {
        match Mailer::new(server) {
            Ok(m) => drop(out.insert(name.clone(), m)),
            Err(e) => tracing::error!(receiver = %name, "email receiver unusable: {e}"),
        }
    }
    out
}

impl Mailer {
    pub fn new(s: &SmtpServer) -> Result<Mailer, String> {
        let mut tls = TlsParameters::builder(s.host.clone());
        if let Some(pem) = &s.ca_pem {
            let ca = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
            tls = tls.add_root_certificate(ca);
        }
        let tls = tls.build_rustls().map_err(|e| e.to_string())?;
        let mode = if s.port == 465 { Tls::Wrapper(tls) } else { Tls::Required(tls) };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(s.port)
            .tls(mode)
            .timeout(Some(Duration::from_secs(10)));
        if let Some(user) = &s.username {
            b = b.credentials(Credentials::new(user.clone(), s.password.clone().unwrap_or_default()));
        }
        Ok(Mailer { transport: b.build() })
    }

    /// Sends the email `r` describes: Ok, or why not (and whether trying again may help).
    pub async fn send(&self, r: &Request) -> Result<(), (String, bool)> {
        let header = |k: &str| r.headers.iter().find(|(n, _)| n == k).map_or("", |(_, v)| v.as_str());
        let mailbox = |v: &str| v.trim().parse::<Mailbox>().map_err(|e| (format!("address {v:?}: {e}"), false));
        let mut m = Message::builder().from(mailbox(header("From"))?).subject(header("Subject"));
        for to in header("To").split(',').filter(|t| !t.trim().is_empty()) {
            m = m.to(mailbox(to)?);
        }
        let msg = m
            .header(ContentType::TEXT_PLAIN)
            .body(String::from_utf8_lossy(&r.body).into_owned())
            .map_err(|e| (e.to_string(), false))?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            // A permanent refusal (bad credentials, a rejected address) will not pass later.
            Err(e) => Err((format!("SMTP: {e}"), !e.is_permanent())),
        }
    }
}
