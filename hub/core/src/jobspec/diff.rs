//! A job's field diff (`job plan` shows it before a run): two versions compared field by
//! field through their JSON form; lists of named things (groups, tasks, services) are
//! matched by name, other lists by position. Pure and deterministic.

use rabble_shared::api::FieldChange;
use rabble_shared::job::JobSpec;
use serde_json::Value;

/// The most changes reported (a wholly new job file says so in a few lines, not hundreds).
pub const MAX_CHANGES: usize = 200;

/// What changes from `old` to `new`, field by field (`groups[web].count`).
pub fn diff(old: &JobSpec, new: &JobSpec) -> Vec<FieldChange> {
    let (a, b) = (serde_json::to_value(old).unwrap_or(Value::Null), serde_json::to_value(new).unwrap_or(Value::Null));
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    out.truncate(MAX_CHANGES);
    out
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    if a == b || out.len() >= MAX_CHANGES {
        return;
    }
    let join = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                walk(&join(k), va, y.get(k).unwrap_or(&Value::Null), out);
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                walk(&join(k), &Value::Null, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.iter().chain(y).all(|v| name_of(v).is_some()) => {
            for va in x {
                let n = name_of(va).unwrap_or_default();
                let vb = y.iter().find(|v| name_of(v) == Some(n)).unwrap_or(&Value::Null);
                walk(&format!("{path}[{n}]"), va, vb, out);
            }
            for vb in y.iter().filter(|v| !x.iter().any(|va| name_of(va) == name_of(v))) {
                walk(&format!("{path}[{}]", name_of(vb).unwrap_or_default()), &Value::Null, vb, out);
            }
        }
        (Value::Null, _) | (_, Value::Null) => out.push(FieldChange {
            path: path.to_owned(),
            old: (!a.is_null()).then(|| a.clone()),
            new: (!b.is_null()).then(|| b.clone()),
        }),
        _ => out.push(FieldChange { path: path.to_owned(), old: Some(a.clone()), new: Some(b.clone()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> JobSpec {
        crate::jobspec::parse("j.hcl", text, &Default::default()).unwrap().job
    }

    #[test]
    fn a_count_and_an_image_change_are_two_fields_and_a_new_task_one() {
        let old = job(
            "job \"web\" {\n group \"g\" {\n count = 1\n task \"t\" {\n driver = \"docker\"\n config {\n image = \"nginx:1\"\n }\n }\n }\n}\n",
        );
        let new = job(
            "job \"web\" {\n group \"g\" {\n count = 3\n task \"t\" {\n driver = \"docker\"\n config {\n image = \"nginx:2\"\n }\n }\n task \"side\" {\n driver = \"raw_exec\"\n config {\n command = \"/bin/true\"\n }\n }\n }\n}\n",
        );
        let d = diff(&old, &new);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert!(paths.contains(&"groups[g].count"), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("groups[g].tasks[t].config")), "{paths:?}");
        let added = d.iter().find(|c| c.path == "groups[g].tasks[side]").expect("the new task, whole");
        assert!(added.old.is_none() && added.new.is_some());
        let count = d.iter().find(|c| c.path == "groups[g].count").unwrap();
        assert_eq!((count.old.clone(), count.new.clone()), (Some(1.into()), Some(3.into())));
        assert!(diff(&old, &old).is_empty(), "the same job: no change");
    }
}
