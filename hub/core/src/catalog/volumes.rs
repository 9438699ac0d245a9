//! Named volumes, pure: created once (the same spec again changes nothing), deleted when
//! nothing uses them (the API checks; the catalog keeps what it is told).

use super::state::{Applied, Dirty};
use rabble_shared::volume::VolumeSpec;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One volume as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub spec: VolumeSpec,
    pub create_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Volumes {
    pub entries: Arc<BTreeMap<String, Arc<Volume>>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum VolumeUpdate {
    Create { spec: VolumeSpec, at_ms: u64 },
    Delete { name: String },
}

impl Volumes {
    pub fn apply(&mut self, u: VolumeUpdate) -> Applied {
        let mut out = Applied::default();
        match u {
            VolumeUpdate::Create { spec, at_ms } => {
                if self.entries.get(&spec.name).is_some_and(|v| v.spec == spec) {
                    return out;
                }
                out.summaries.push(format!("volume {} created: {}", spec.name, spec.describe()));
                out.dirty.push(Dirty::Volume(spec.name.clone()));
                Arc::make_mut(&mut self.entries).insert(spec.name.clone(), Arc::new(Volume { spec, create_ms: at_ms }));
            }
            VolumeUpdate::Delete { name } => {
                if Arc::make_mut(&mut self.entries).remove(&name).is_some() {
                    out.summaries.push(format!("volume {name} deleted"));
                    out.dirty.push(Dirty::Volume(name));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::volume::Backing;

    #[test]
    fn created_once_and_deleted() {
        let mut v = Volumes::default();
        let spec =
            VolumeSpec { name: "db".into(), backing: Backing::Local { node: "pi1".into(), path: "/srv/db".into() } };
        let a = v.apply(VolumeUpdate::Create { spec: spec.clone(), at_ms: 5 });
        assert_eq!(
            (a.dirty, a.summaries),
            (vec![Dirty::Volume("db".into())], vec!["volume db created: local /srv/db on pi1".to_owned()])
        );
        assert!(v.apply(VolumeUpdate::Create { spec, at_ms: 9 }).dirty.is_empty(), "the same again: no change");
        assert_eq!(v.entries["db"].create_ms, 5);
        assert_eq!(v.apply(VolumeUpdate::Delete { name: "db".into() }).dirty, [Dirty::Volume("db".into())]);
        assert!(v.apply(VolumeUpdate::Delete { name: "db".into() }).dirty.is_empty());
    }
}
