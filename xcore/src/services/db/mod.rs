//! Databases (sqlx): named connections, read-only handles for read grants, transactions,
//! per-plugin migrations.

mod options;

pub use options::DatabaseOptions;
