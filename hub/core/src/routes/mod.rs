//! The HTTP routing table's rules: `tags` (one instance's `<prefix>.*` tags → its routers,
//! services and middlewares) and `table` (the catalog → a table per lane). The hub rebuilds
//! the tables at every commit and publishes them.

pub mod table;
pub mod tags;
