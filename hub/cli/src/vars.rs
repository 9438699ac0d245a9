//! `rabble var put|get|list|purge`, as `nomad var`: items as `key=value` arguments
//! (`key=@file` reads a file, `key=-` stdin), kept sealed by the hub.

use super::{CliError, Client};
use rabble_shared::api::VarMeta;
use std::io::Read;

fn encode(path: &str) -> String {
    super::kv::encode_key(path)
}

/// `k=v` arguments into items.
pub fn items(args: &[String]) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let mut out = serde_json::Map::new();
    for a in args {
        let (k, v) = a.split_once('=').ok_or_else(|| CliError::Refused(format!("{a:?} is not key=value")))?;
        let v = match v {
            "-" => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            }
            f if f.starts_with('@') => {
                std::fs::read_to_string(&f[1..]).map_err(|e| CliError::Refused(format!("{}: {e}", &f[1..])))?
            }
            v => v.to_owned(),
        };
        out.insert(k.to_owned(), v.into());
    }
    Ok(out)
}

fn call(client: &Client, method: &str, path: &str, body: Option<String>) -> Result<(u16, String), CliError> {
    let url = format!("{}{path}", client.addr);
    let agent = &client.agent;
    let resp = match (method, body) {
        ("PUT", Some(b)) => client.auth(agent.put(&url)).content_type("application/json").send(b.as_str()),
        ("DELETE", _) => client.auth(agent.delete(&url)).call(),
        _ => client.auth(agent.get(&url)).call(),
    };
    let mut resp = resp.map_err(|error| CliError::Unreachable { addr: client.addr.clone(), error })?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    match status {
        200..=299 => Ok((status, text)),
        404 => Ok((status, text)),
        409 => Err(CliError::Refused("check-and-set conflict: the variable changed (or exists); get it again".into())),
        _ => Err(CliError::Refused(text.trim().to_owned())),
    }
}

pub fn put(client: &Client, path: &str, args: &[String], cas: Option<u64>) -> Result<(), CliError> {
    let body = serde_json::json!({ "Path": path, "Items": items(args)? }).to_string();
    let q = cas.map(|c| format!("?cas={c}")).unwrap_or_default();
    call(client, "PUT", &format!("/v1/var/{}{q}", encode(path)), Some(body))?;
    println!("Created variable {path:?}");
    Ok(())
}

pub fn get(client: &Client, path: &str, item: Option<&str>, json: bool) -> Result<(), CliError> {
    let (status, text) = call(client, "GET", &format!("/v1/var/{}", encode(path)), None)?;
    if status == 404 {
        return Err(CliError::Refused(format!("no variable {path:?}")));
    }
    let v: VarMeta = serde_json::from_str(&text).map_err(|e| bad(&e))?;
    let items = v.items.clone().unwrap_or_default();
    match item {
        Some(k) => match items.get(k) {
            Some(s) => println!("{s}"),
            None => return Err(CliError::Refused(format!("variable {path:?} has no item {k:?}"))),
        },
        None if json => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        None => {
            println!("Path         = {}", v.path);
            println!("Modify Index = {}", v.modify_index);
            println!("\nItems");
            for (k, val) in &items {
                println!("{k:<12} = {val}");
            }
        }
    }
    Ok(())
}

pub fn list(client: &Client, prefix: &str, json: bool) -> Result<(), CliError> {
    let (_, text) = call(client, "GET", &format!("/v1/vars?prefix={}", encode(prefix)), None)?;
    let v: Vec<VarMeta> = serde_json::from_str(&text).map_err(|e| bad(&e))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for m in v {
            println!("{}", m.path);
        }
    }
    Ok(())
}

pub fn purge(client: &Client, path: &str, cas: Option<u64>) -> Result<(), CliError> {
    let q = cas.map(|c| format!("?cas={c}")).unwrap_or_default();
    call(client, "DELETE", &format!("/v1/var/{}{q}", encode(path)), None)?;
    println!("Successfully purged variable {path:?}");
    Ok(())
}

fn bad(e: &dyn std::fmt::Display) -> CliError {
    CliError::BadAnswer { url: "/v1/var".into(), message: e.to_string() }
}
