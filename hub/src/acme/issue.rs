//! One certificate from an ACME CA (instant-acme): an order for the names, a DNS-01
//! TXT record per authorization through Cloudflare, a wait until the record shows at
//! the resolvers, then the challenge, the CSR (a fresh ECDSA P-256 key) and the chain.
//! The TXT records stay until the CA has validated them, and are removed whatever happens.

use super::cloudflare::Cloudflare;
use super::config::Resolver;
use super::plan::{self, CertKey};
use super::store::Stored;
use instant_acme::{Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error(transparent)]
    Dns(#[from] super::cloudflare::DnsError),
    #[error("{0}")]
    Other(String),
}

/// Issues the certificate for `key` with `account`.
pub async fn issue(r: &Resolver, account: &Account, dns: &Cloudflare, key: &CertKey) -> Result<Stored, IssueError> {
    let ids: Vec<Identifier> = key.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&ids)).await?;
    let mut records: Vec<(String, String)> = Vec::new();
    let retry = RetryPolicy::new().timeout(Duration::from_secs(120));
    // The records stay until the CA has validated them (the order is ready or failed).
    let ready = match challenge_all(r, dns, &mut order, &mut records).await {
        Ok(()) => order.poll_ready(&retry).await.map_err(IssueError::from),
        Err(e) => Err(e),
    };
    for (zone, id) in &records {
        if let Err(e) = dns.delete(zone, id).await {
            tracing::warn!(resolver = %r.name, "could not remove a challenge record: {e}");
        }
    }
    let status = ready?;
    if status != OrderStatus::Ready {
        return Err(IssueError::Other(format!("the order is {status:?}, not ready, after the challenges")));
    }
    let key_pem = order.finalize().await?;
    let chain_pem = order.poll_certificate(&retry).await?;
    let leaf = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| IssueError::Other("the CA's answer holds no certificate".into()))?;
    let (not_before, not_after) =
        plan::validity(&leaf).ok_or_else(|| IssueError::Other("the certificate's validity cannot be read".into()))?;
    Ok(Stored { key: key.clone(), chain_pem, key_pem, not_before, not_after })
}

use rustls::pki_types::pem::PemObject;

async fn challenge_all(
    r: &Resolver,
    dns: &Cloudflare,
    order: &mut instant_acme::Order,
    records: &mut Vec<(String, String)>,
) -> Result<(), IssueError> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(IssueError::Other(format!("an authorization is {other:?}"))),
        }
        let mut challenge = authz
            .challenge(ChallengeType::Dns01)
            .ok_or_else(|| IssueError::Other("the CA offers no dns-01 challenge".into()))?;
        let base = match challenge.identifier().identifier {
            Identifier::Dns(d) => d.trim_start_matches("*.").to_owned(),
            other => return Err(IssueError::Other(format!("cannot answer for {other:?}"))),
        };
        let name = format!("_acme-challenge.{base}");
        let value = challenge.key_authorization().dns_value();
        let zone = dns.zone_for(&base).await?;
        let id = dns.add_txt(&zone, &name, &value).await?;
        records.push((zone, id));
        tracing::info!(resolver = %r.name, record = %name, "dns-01 record added; waiting for it to show");
        if !propagated(&r.dns_resolvers, &name, &value, r.propagation_timeout).await {
            tracing::warn!(
                resolver = %r.name,
                record = %name,
                timeout = ?r.propagation_timeout,
                "the record did not show at the resolvers in time; asking the CA anyway"
            );
        }
        challenge.set_ready().await?;
    }
    Ok(())
}

/// Polls each resolver until every one answers the TXT value (or the time is up).
async fn propagated(resolvers: &[SocketAddr], name: &str, value: &str, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut all = true;
        for r in resolvers {
            if !txt_has(*r, name, value).await {
                all = false;
                break;
            }
        }
        if all {
            return true;
        }
        if tokio::time::Instant::now() + Duration::from_secs(2) > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Whether `resolver` answers `value` among `name`'s TXT records (one UDP query).
async fn txt_has(resolver: SocketAddr, name: &str, value: &str) -> bool {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let Ok(qname) = Name::from_ascii(format!("{name}.")) else { return false };
    let mut q = Message::query();
    q.metadata.id = fastrand::u16(..);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(qname, RecordType::TXT));
    let Ok(bytes) = q.to_vec() else { return false };
    let bind: SocketAddr =
        if resolver.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else { return false };
    if sock.send_to(&bytes, resolver).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await else { return false };
    let Ok(m) = Message::from_vec(&buf[..n]) else { return false };
    m.answers.iter().any(|rec| match &rec.data {
        RData::TXT(t) => t.txt_data.iter().map(|p| String::from_utf8_lossy(p)).collect::<String>() == value,
        _ => false,
    })
}
