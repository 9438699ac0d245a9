//! `rabble kv get|put|delete|list|watch`: the hub's KV store through its Consul API
//! (`/v1/kv/<key>`), with Consul's CLI's habits (`put key value`, `@file`, `-` for stdin).

use super::{CliError, Client};
use base64::Engine;
use std::io::{Read, Write};

/// A key for a URL path: every byte but unreserved ones and `/` percent-encoded.
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A raw request to the hub: (status, `X-Consul-Index`, body).
fn call(client: &Client, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<(u16, u64, Vec<u8>), CliError> {
    let url = format!("{}{path}", client.addr);
    let agent = &client.agent;
    let resp = match (method, body) {
        ("PUT", Some(b)) => client.auth(agent.put(&url)).send(&b[..]),
        ("DELETE", _) => client.auth(agent.delete(&url)).call(),
        _ => client.auth(agent.get(&url)).call(),
    };
    let mut resp = resp.map_err(|error| CliError::Unreachable { addr: client.addr.clone(), error })?;
    let index = resp.headers().get("x-consul-index").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    resp.body_mut().with_config().limit(1 << 20).reader().read_to_end(&mut buf)?;
    if status >= 400 && status != 404 {
        return Err(CliError::Refused(String::from_utf8_lossy(&buf).trim().to_owned()));
    }
    Ok((status, index, buf))
}

pub fn get(client: &Client, key: &str, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let q = if json { "" } else { "?raw" };
    let (status, _, body) = call(client, "GET", &format!("/v1/kv/{}{q}", encode_key(key)), None)?;
    if status == 404 {
        return Err(CliError::Refused(format!("no key {key:?}")));
    }
    out.write_all(&body)?;
    if json {
        writeln!(out)?;
    }
    Ok(())
}

/// The value for `put`: the argument, `@file`'s contents, or stdin for `-`.
pub fn value(arg: Option<&str>) -> Result<Vec<u8>, CliError> {
    match arg {
        None | Some("-") => {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v)?;
            Ok(v)
        }
        Some(a) if a.starts_with('@') => {
            std::fs::read(&a[1..]).map_err(|e| CliError::Refused(format!("{}: {e}", &a[1..])))
        }
        Some(a) => Ok(a.as_bytes().to_vec()),
    }
}

pub fn put(client: &Client, key: &str, value: Vec<u8>, flags: Option<u64>, cas: Option<u64>) -> Result<(), CliError> {
    let mut q: Vec<String> = flags.map(|f| format!("flags={f}")).into_iter().collect();
    q.extend(cas.map(|c| format!("cas={c}")));
    let path = format!("/v1/kv/{}{}{}", encode_key(key), if q.is_empty() { "" } else { "?" }, q.join("&"));
    let (_, _, body) = call(client, "PUT", &path, Some(value))?;
    if body.trim_ascii() != b"true" {
        return Err(CliError::Refused(format!("{key}: check-and-set failed (index {})", cas.unwrap_or(0))));
    }
    println!("Success! Data written to: {key}");
    Ok(())
}

pub fn delete(client: &Client, key: &str, recurse: bool, cas: Option<u64>) -> Result<(), CliError> {
    let mut q = Vec::new();
    if recurse {
        q.push("recurse".to_owned());
    }
    q.extend(cas.map(|c| format!("cas={c}")));
    let path = format!("/v1/kv/{}{}{}", encode_key(key), if q.is_empty() { "" } else { "?" }, q.join("&"));
    let (_, _, body) = call(client, "DELETE", &path, None)?;
    if body.trim_ascii() != b"true" {
        return Err(CliError::Refused(format!("{key}: check-and-set failed (index {})", cas.unwrap_or(0))));
    }
    println!("Success! Deleted key{}: {key}", if recurse { "s under" } else { "" });
    Ok(())
}

/// The keys under `prefix` (one level with `separator`), one per line or JSON.
pub fn list(client: &Client, prefix: &str, separator: Option<&str>, json: bool) -> Result<(), CliError> {
    let sep = separator.map(|s| format!("&separator={}", encode_key(s))).unwrap_or_default();
    let (status, _, body) = call(client, "GET", &format!("/v1/kv/{}?keys{sep}", encode_key(prefix)), None)?;
    let keys: Vec<String> = if status == 404 { vec![] } else { serde_json::from_slice(&body).map_err(|e| bad(&e))? };
    if json {
        println!("{}", serde_json::to_string_pretty(&keys).unwrap_or_default());
    } else {
        for k in keys {
            println!("{k}");
        }
    }
    Ok(())
}

fn bad(e: &dyn std::fmt::Display) -> CliError {
    CliError::BadAnswer { url: "/v1/kv".into(), message: e.to_string() }
}

/// Prints the key (or, with `recurse`, every key under it as `key=value`) now and at
/// every change, blocking on the hub as Consul's watches do.
pub fn watch(client: &Client, key: &str, recurse: bool) -> Result<(), CliError> {
    let mut index = 0u64;
    loop {
        let q = if recurse { "recurse&" } else { "" };
        let path = format!("/v1/kv/{}?{q}index={index}&wait=5m", encode_key(key));
        let (status, new, body) = call(client, "GET", &path, None)?;
        if new == index {
            continue; // the wait ended without a change
        }
        index = if new < index { 0 } else { new };
        let mut out = std::io::stdout().lock();
        if status == 404 {
            writeln!(out, "-- {key}: (none) at index {new}")?;
        } else {
            let pairs: Vec<rabble_shared::consul::KvPair> = serde_json::from_slice(&body).map_err(|e| bad(&e))?;
            writeln!(out, "-- {key} at index {new}")?;
            for p in pairs {
                let v = p.value.map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default());
                let text = String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned();
                writeln!(out, "{}={}", p.key, text)?;
            }
        }
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_encoded_for_paths() {
        assert_eq!(super::encode_key("app/db config?x"), "app/db%20config%3Fx");
        assert_eq!(super::encode_key("ü"), "%C3%BC");
    }
}
