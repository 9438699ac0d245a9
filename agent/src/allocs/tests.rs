//! Allocation runtime tests.
