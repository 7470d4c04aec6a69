//! Offset pagination with totals (spec §7: lists with counts and pagination).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    limit: u32,
    offset: u64,
}

impl PageRequest {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 100;
    /// Largest offset (deep offsets are slow on Postgres; use filters instead).
    pub const MAX_OFFSET: u64 = 1_000_000;

    /// Validates `limit` (1–100, default 20) and `offset` (0–1,000,000, default 0).
    pub fn new(limit: Option<u32>, offset: Option<u64>) -> Result<Self> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        let offset = offset.unwrap_or(0);
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(Error::invalid(
                "limit",
                "range",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        if offset > Self::MAX_OFFSET {
            return Err(Error::invalid(
                "offset",
                "range",
                format!("must be at most {}", Self::MAX_OFFSET),
            ));
        }
        Ok(Self { limit, offset })
    }

    /// Page size.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Items skipped.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Applies this page to an already filtered and ordered list (used by in-memory adapters).
    pub fn slice<T: Clone>(&self, all: &[T]) -> Page<T> {
        let start = usize::try_from(self.offset).unwrap_or(usize::MAX).min(all.len());
        let end = start.saturating_add(self.limit as usize).min(all.len());
        let items = all.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
        Page {
            items,
            total: all.len() as u64,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// One page of results with the total number of matches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Matches across all pages.
    pub total: u64,
    /// Page size asked for.
    pub limit: u32,
    /// Items skipped.
    pub offset: u64,
}

impl<T> Page<T> {
    /// Maps the items, keeping the counts.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_are_validated() {
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(101), None).is_err());
        assert!(PageRequest::new(None, Some(PageRequest::MAX_OFFSET + 1)).is_err());
        assert_eq!(PageRequest::new(None, None).unwrap().limit(), 20);
    }

    proptest! {
        #[test]
        fn slicing_never_panics_and_counts_all(len in 0usize..300, limit in 1u32..=100, offset in 0u64..400) {
            let all: Vec<usize> = (0..len).collect();
            let page = PageRequest::new(Some(limit), Some(offset)).unwrap().slice(&all);
            prop_assert_eq!(page.total, len as u64);
            prop_assert!(page.items.len() <= limit as usize);
            if let Some(first) = page.items.first() { prop_assert_eq!(*first as u64, offset); }
        }
    }
}
