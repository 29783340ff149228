//! Not built: this crate only names sled 0.34.7 for scripts/check-sled.sh to fetch.
