//! Sources of lines. Skeleton: to be written.
