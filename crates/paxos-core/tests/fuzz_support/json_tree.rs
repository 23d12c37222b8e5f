//! Arbitrary JSON trees around a target's own leaves, for the decoders' fuzzers.

use proptest::prelude::*;
use serde_json::Value as Json;

/// Arrays and objects nested up to `depth` deep, of at most `width` children each and about
/// `size` nodes in all, whose leaves come from `leaf`.
pub fn json_tree(
    leaf: impl Strategy<Value = Json> + 'static,
    depth: u32,
    size: u32,
    width: usize,
) -> impl Strategy<Value = Json> {
    leaf.prop_recursive(depth, size, width as u32, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..width).prop_map(Json::Array),
            proptest::collection::btree_map("[a-z_]{1,9}", inner, 0..width)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}
