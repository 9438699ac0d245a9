//! Calls to other members: Raft's RPCs (openraft's `RaftNetworkV2`), forwarded writes,
//! joins. HTTP/1.1 over the cluster's mutual TLS, one kept connection per client (re-made
//! when it breaks), every call under a deadline, and the member each call is for named in
//! a header the server checks (an address may have changed hands).

use super::tls::ClusterTls;
use super::{Member, MemberId, TypeConfig};
use crate::catalog::log::{EntryResult, LogEntry};
use crate::catalog::writer::CommitFailed;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use openraft::OptionalSend;
use openraft::alias::{SnapshotOf, VoteOf};
use openraft::errors::{NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Cursor;
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// The header naming the member a request is for.
pub const TO: &str = "x-rabble-member";
/// A deadline for calls Raft gives none.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The most an answer may hold (a snapshot is sent, never received, by a caller).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Why a call to a member failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Not connected (nothing was sent).
    #[error("{addr}: {error}")]
    Connect { addr: String, error: String },
    #[error("{addr}: {error}")]
    Call { addr: String, error: String },
}

/// Connections to members; cheap to clone (openraft makes one client per member and use).
#[derive(Clone)]
pub struct Peers {
    tls: TlsConnector,
    /// The address calls leave from (the cluster listener's, when it is a specific one).
    source: Option<std::net::IpAddr>,
}

impl Peers {
    pub fn new(tls: &ClusterTls, source: Option<std::net::IpAddr>) -> Result<Peers, super::ClusterError> {
        Ok(Peers { tls: TlsConnector::from(tls.client()?), source })
    }

    pub fn client(&self, to: Option<MemberId>, addr: &str) -> Client {
        Client { tls: self.tls.clone(), addr: addr.to_owned(), to, conn: None, source: self.source }
    }
}

/// Forwards a write to the leader over `c`, its connection; the leader's Raft commits it.
pub async fn write(c: &mut Client, leader: &Member, entry: &LogEntry) -> Result<EntryResult, CommitFailed> {
    match c.call::<_, Result<EntryResult, String>>("/cluster/write", entry, CALL_TIMEOUT).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(CommitFailed(format!("the leader ({}) refused the write: {e}", leader.name))),
        Err(e) => Err(CommitFailed(format!("forwarding the write to the leader ({}): {e}", leader.name))),
    }
}

type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One member's connection.
pub struct Client {
    tls: TlsConnector,
    addr: String,
    to: Option<MemberId>,
    conn: Option<Conn>,
    source: Option<std::net::IpAddr>,
}

/// A TCP connection to `addr`, from `source` when given.
async fn dial(addr: &str, source: Option<std::net::IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let Some(ip) = source else { return tokio::net::TcpStream::connect(addr).await };
    let mut last = std::io::Error::other(format!("{addr}: no address"));
    for to in tokio::net::lookup_host(addr).await? {
        let socket = if to.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        if to.is_ipv4() == ip.is_ipv4() {
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
        }
        match socket.connect(to).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A streamed answer: its body as it arrives, and the connection it holds (closed when
/// this is dropped, so a stream that never ends does not outlive its reader).
pub struct Streamed {
    pub body: hyper::body::Incoming,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Streamed {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Client {
    /// A new TLS connection to the member: the sender and the task driving it.
    async fn handshake(&self) -> Result<(Conn, tokio::task::JoinHandle<()>), CallError> {
        let err = |e: &dyn std::fmt::Display| CallError::Connect { addr: self.addr.clone(), error: e.to_string() };
        let tcp = dial(&self.addr, self.source).await.map_err(|e| err(&e))?;
        let _ = tcp.set_nodelay(true);
        let tls = self.tls.connect(ClusterTls::server_name(), tcp).await.map_err(|e| err(&e))?;
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(|e| err(&e))?;
        let driving = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((send, driving))
    }

    async fn connect(&mut self) -> Result<&mut Conn, CallError> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.conn = Some(self.handshake().await?.0);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn request(&self, path: &str, body: Vec<u8>) -> Result<hyper::Request<Full<Bytes>>, CallError> {
        hyper::Request::post(path)
            .header("host", super::tls::PEER_NAME)
            .header("content-type", "application/json")
            .header(TO, self.to.map(|t| t.to_string()).unwrap_or_default())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Call { addr: self.addr.clone(), error: e.to_string() })
    }

    /// POSTs `body` as JSON to `path` on a connection of its own and hands back the answer
    /// as it arrives (a successful status within `timeout`; the body has no deadline).
    pub async fn stream<Req: Serialize>(
        &self,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Streamed, CallError> {
        let call_err = |error: String| CallError::Call { addr: self.addr.clone(), error };
        let req = self.request(path, serde_json::to_vec(body).map_err(|e| call_err(e.to_string()))?)?;
        let go = async {
            let (mut send, conn) = self.handshake().await?;
            let rsp = send.send_request(req).await.map_err(|e| call_err(e.to_string()))?;
            let status = rsp.status();
            if !status.is_success() {
                let bytes = http_body_util::Limited::new(rsp.into_body(), 4096).collect().await.map(|b| b.to_bytes());
                conn.abort();
                let text = bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                return Err(call_err(format!("HTTP {status}: {text}")));
            }
            Ok(Streamed { body: rsp.into_body(), conn })
        };
        tokio::time::timeout(timeout, go).await.map_err(|_| call_err(format!("no answer within {timeout:?}")))?
    }

    /// POSTs `body` as JSON to `path` and reads the JSON answer, within `timeout`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let addr = self.addr.clone();
        let call_err = |error: String| CallError::Call { addr: addr.clone(), error };
        let req = self.request(path, serde_json::to_vec(body).map_err(|e| call_err(e.to_string()))?)?;
        let go = async {
            let conn = self.connect().await?;
            conn.ready().await.map_err(|e| call_err(e.to_string()))?;
            let rsp = conn.send_request(req).await.map_err(|e| call_err(e.to_string()))?;
            let status = rsp.status();
            let bytes = http_body_util::Limited::new(rsp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| call_err(e.to_string()))?
                .to_bytes();
            if !status.is_success() {
                return Err(call_err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                )));
            }
            serde_json::from_slice(&bytes).map_err(|e| call_err(format!("answer: {e}")))
        };
        match tokio::time::timeout(timeout, go).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(call_err(format!("no answer within {timeout:?}")))
            }
        }
    }

    async fn raft<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        req: Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let answer: Result<Resp, RaftError<TypeConfig>> =
            self.call(path, &req, option.soft_ttl()).await.map_err(|e| match e {
                CallError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Call { .. } => RPCError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = Client;

    async fn new_client(&mut self, target: MemberId, node: &Member) -> Client {
        self.client(Some(target), &node.addr)
    }
}

impl RaftNetworkV2<TypeConfig> for Client {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft("/raft/append", req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft("/raft/vote", req, &option).await
    }

    async fn pre_vote(
        &mut self,
        req: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft("/raft/pre-vote", req, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Self::SnapshotData>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let req = (vote, snapshot.meta, Bytes::from(snapshot.snapshot.into_inner()));
        let option = RPCOption::new(option.hard_ttl().max(Duration::from_secs(30)));
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = self.raft("/raft/snapshot", req, &option) => Ok(r?),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft("/raft/transfer-leader", req, &option).await
    }
}

/// A member's answer to `/cluster/hello`: who it is and where it stands.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Hello {
    pub id: MemberId,
    pub member: Member,
    /// Whether it belongs to a cluster (has a membership).
    pub member_of_cluster: bool,
    /// The leader it knows, if any.
    pub leader: Option<(MemberId, Member)>,
    /// Its catalog's index (a hub with data is the one to start a new cluster from).
    pub index: u64,
}

impl Peers {
    pub async fn hello(&self, addr: &str, me: &Hello) -> Result<Hello, CallError> {
        self.client(None, addr).call("/cluster/hello", me, Duration::from_secs(3)).await
    }
}
