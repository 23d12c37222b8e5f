//! The wire samples of `shared/fixtures/` and checks that server answers have their shapes.

use std::path::PathBuf;

use serde_json::{Map, Value as Json, json};

/// Every sample of one fixture file (an array of named samples).
pub fn load(file: &str) -> Vec<Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Json::Array(samples)) => samples,
        _ => panic!("fixture {} is not an array of samples", path.display()),
    }
}

/// The type skeleton of a JSON value: what must match between a server's answer and a fixture.
/// Strings, numbers and lists of strings are abstracted; `true`, `false`, `null` and object keys
/// are kept, since they tell the shapes apart.
pub fn shape(value: &Json) -> Json {
    match value {
        Json::Null | Json::Bool(_) => value.clone(),
        Json::Number(n) if n.is_u64() => json!("u64"),
        Json::Number(_) => json!("number"),
        Json::String(_) => json!("string"),
        Json::Array(items) if items.iter().all(Json::is_string) => json!("list of strings"),
        Json::Array(items) => Json::Array(items.iter().map(shape).collect()),
        Json::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// Panics unless `answer` (a `/client-request` body answered with `status`) has the shape and
/// status of one of the samples of `answers.json`. Returns that sample's name.
pub fn assert_answer_shape(status: u16, answer: &Json) -> String {
    assert_shape_of("answers.json", status, answer)
}

/// Panics unless `answer` (a `/watch` body answered with `status`) has the shape and status of
/// one of the samples of `watches.json`. Returns that sample's name.
pub fn assert_watch_shape(status: u16, answer: &Json) -> String {
    assert_shape_of("watches.json", status, answer)
}

fn assert_shape_of(file: &str, status: u16, answer: &Json) -> String {
    let got = shape(answer);
    for sample in load(file) {
        if sample["status"] == json!(status) && shape(&sample["answer"]) == got {
            return sample["name"].as_str().unwrap_or_default().to_owned();
        }
    }
    panic!("answer {status} {answer} has the shape of no sample in {file}");
}

/// Panics unless `body` is an error body of `errors.json` for `status`: `{"error": <sentence>}`.
pub fn assert_error_shape(status: u16, body: &Json) {
    let samples = load("errors.json");
    let sample = samples
        .iter()
        .find(|s| s["status"] == json!(status))
        .unwrap_or_else(|| panic!("errors.json has no sample for status {status}"));
    assert_eq!(
        shape(body),
        shape(&sample["body"]),
        "error body {body} for {status} does not have the fixture's shape"
    );
    assert!(
        !body["error"].as_str().unwrap_or_default().is_empty(),
        "empty error sentence"
    );
}

/// Panics unless `status` (a `/status` body) has exactly the fields of `status.json`.
pub fn assert_status_shape(status: &Json) {
    let sample = &load("status.json")[0]["status"];
    let mut want: Vec<&String> = sample.as_object().unwrap().keys().collect();
    let mut got: Vec<&String> = status
        .as_object()
        .unwrap_or_else(|| panic!("/status is not an object: {status}"))
        .keys()
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "/status fields: {status}");
    assert!(status["server_id"].is_string(), "server_id: {status}");
    assert!(status["self"].is_string() || status["self"].is_null());
    assert!(status["leader"].is_string() || status["leader"].is_null());
    assert!(status["ballot"]["round"].is_u64() && status["ballot"]["member"].is_u64());
    assert!(status["commit_index"].is_u64() && status["applied_index"].is_u64());
    assert!(
        status["known_commit_index"].is_u64(),
        "known_commit_index: {status}"
    );
    assert!(
        status["servers"]
            .as_array()
            .is_some_and(|s| s.iter().all(Json::is_string))
    );
    let role = status["role"].as_str().unwrap_or_default();
    assert!(
        ["discovering", "follower", "candidate", "leader"].contains(&role),
        "role {role:?}"
    );
}
