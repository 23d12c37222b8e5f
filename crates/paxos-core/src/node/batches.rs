//! Cutting a run of entries into messages of bounded size.

/// Splits `items` into batches of at most `max_count` items and at most `max_bytes` bytes by
/// `size`. A batch always takes at least one item, so an item larger than `max_bytes` still goes,
/// alone, rather than never.
pub(super) fn batches<T>(
    items: Vec<T>,
    max_count: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let item_size = size(&item);
        match out.last_mut() {
            Some(batch) if batch.len() < max_count && bytes + item_size <= max_bytes => {
                bytes += item_size;
                batch.push(item);
            }
            _ => {
                bytes = item_size;
                out.push(vec![item]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::batches;

    #[test]
    fn cuts_by_count_and_by_bytes() {
        let sizes = vec![1, 1, 1, 1, 1];
        assert_eq!(batches(sizes.clone(), 2, 100, |s| *s).len(), 3);
        assert_eq!(batches(sizes, 100, 3, |s| *s).len(), 2);
    }

    #[test]
    fn an_item_over_the_byte_limit_goes_alone() {
        let out = batches(vec![1, 50, 1], 100, 10, |s| *s);
        assert_eq!(out, vec![vec![1], vec![50], vec![1]]);
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(batches(Vec::<usize>::new(), 1, 1, |s| *s).is_empty());
    }
}
