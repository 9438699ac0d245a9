//! `rabble acl bootstrap|policy|token` (Consul's and Nomad's verbs) and `rabble login`:
//! ACL tokens and policies through the hub's API, and where the CLI finds its token.

use super::{CliError, Client};
use rabble_shared::api::{AclPolicyRequest, AclPolicyView, AclTokenRequest, AclTokenView, Deleted};
use std::path::PathBuf;

/// `rabble acl ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AclCmd {
    /// Make the first management token (once); prints its secret once.
    Bootstrap,
    /// Policies: rules in HCL by resource and name prefix (docs/security.md).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Tokens: an accessor (public) and a secret (shown once).
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Create or replace a policy.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The rules: HCL, @FILE, or - for stdin.
        #[arg(long)]
        rules: String,
    },
    List,
    Show {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Create a token with policies (repeat --policy), or a management token.
    Create {
        #[arg(long = "policy")]
        policies: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// How long it lives (e.g. 720h); default: until deleted.
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        management: bool,
    },
    List,
    Show {
        accessor: String,
    },
    /// The token this CLI sends.
    #[command(name = "self")]
    Itself,
    Delete {
        accessor: String,
    },
}

/// Where the CLI looks for a token, first found wins: `RABBLE_TOKEN`, the file
/// `RABBLE_TOKEN_FILE` names, `rabble login`'s file, and the hub's management token
/// (`/etc/rabble/management.token`, readable by root on the hub).
pub fn find_token() -> Option<String> {
    let nonempty = |s: String| Some(s.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(t) = std::env::var("RABBLE_TOKEN").ok().and_then(nonempty) {
        return Some(t);
    }
    let files = std::env::var_os("RABBLE_TOKEN_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(login_file())
        .chain([PathBuf::from("/etc/rabble/management.token")]);
    files.into_iter().find_map(|p| std::fs::read_to_string(p).ok().and_then(nonempty))
}

/// `rabble login`'s file: `$XDG_CONFIG_HOME/rabble/token` or `~/.config/rabble/token`.
pub fn login_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("rabble").join("token"))
}

/// `rabble login`: checks `secret` with the hub, then keeps it in the login file (0600).
pub fn login(client: &Client, secret: &str) -> Result<PathBuf, CliError> {
    let checked = client.clone().with_token(secret);
    let me: AclTokenView = checked.get("/api/v1/acl/token/self")?;
    let path = login_file().ok_or_else(|| CliError::Refused("no HOME or XDG_CONFIG_HOME for the token file".into()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    std::io::Write::write_all(&mut f, format!("{secret}\n").as_bytes())?;
    println!("Logged in with token {} ({}); kept in {}", me.accessor, me.description, path.display());
    Ok(path)
}

fn print_token(t: &AclTokenView) {
    println!("AccessorID:  {}", t.accessor);
    if let Some(s) = &t.secret {
        println!("SecretID:    {s}");
    }
    println!("Description: {}", t.description);
    if t.management {
        println!("Management:  true");
    }
    println!("Policies:    {}", t.policies.join(", "));
    if let Some(e) = t.expires_ms {
        println!("Expires:     {} (unix ms)", e);
    }
}

fn rules(arg: &str) -> Result<String, CliError> {
    match arg {
        "-" => Ok(std::io::read_to_string(std::io::stdin())?),
        a if a.starts_with('@') => Ok(std::fs::read_to_string(&a[1..])?),
        a => Ok(a.to_owned()),
    }
}

pub fn run(client: &Client, cmd: AclCmd, json: bool) -> Result<(), CliError> {
    let show = |t: &AclTokenView| {
        if json { println!("{}", serde_json::to_string_pretty(t).unwrap_or_default()) } else { print_token(t) }
    };
    match cmd {
        AclCmd::Bootstrap => show(&client.post::<AclTokenView>("/api/v1/acl/bootstrap", &())?),
        AclCmd::Policy(PolicyCmd::Create { name, description, rules: r }) => {
            let req = AclPolicyRequest { description, rules: rules(&r)? };
            let p: AclPolicyView = client.put(&format!("/api/v1/acl/policies/{name}"), &req)?;
            println!("Policy {:?} written", p.name);
        }
        AclCmd::Policy(PolicyCmd::List) => {
            for p in client.get::<Vec<AclPolicyView>>("/api/v1/acl/policies")? {
                println!("{:<24} {}", p.name, p.description);
            }
        }
        AclCmd::Policy(PolicyCmd::Show { name }) => {
            let p: AclPolicyView = client.get(&format!("/api/v1/acl/policies/{name}"))?;
            println!("Name:        {}\nDescription: {}\nRules:\n{}", p.name, p.description, p.rules);
        }
        AclCmd::Policy(PolicyCmd::Delete { name }) => {
            let d: Deleted = client.delete(&format!("/api/v1/acl/policies/{name}"))?;
            println!("Policy {:?} deleted", d.deleted);
        }
        AclCmd::Token(TokenCmd::Create { policies, description, ttl, management }) => {
            let req = AclTokenRequest { description, policies, management, ttl };
            show(&client.post::<AclTokenView>("/api/v1/acl/tokens", &req)?);
        }
        AclCmd::Token(TokenCmd::List) => {
            for t in client.get::<Vec<AclTokenView>>("/api/v1/acl/tokens")? {
                let what = if t.management { "management".to_owned() } else { t.policies.join(",") };
                println!("{}  {:<24} {}", t.accessor, what, t.description);
            }
        }
        AclCmd::Token(TokenCmd::Show { accessor }) => {
            show(&client.get::<AclTokenView>(&format!("/api/v1/acl/tokens/{accessor}"))?)
        }
        AclCmd::Token(TokenCmd::Itself) => show(&client.get::<AclTokenView>("/api/v1/acl/token/self")?),
        AclCmd::Token(TokenCmd::Delete { accessor }) => {
            let d: Deleted = client.delete(&format!("/api/v1/acl/tokens/{accessor}"))?;
            println!("Token {} deleted", d.deleted);
        }
    }
    Ok(())
}
