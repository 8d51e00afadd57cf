//! The OpenAPI document stays true: every mounted route is in it, and every JSON body the tests
//! receive validates against its schemas (`check` runs on each response of `TestApp::send`).

use crate::helpers::{Response, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(flare::http::routes::OPENAPI_JSON).expect("openapi.json is JSON")
    })
}

/// The `(method, path)` pairs of `routes` that `doc` does not describe.
fn undocumented(doc: &Value, routes: &[(String, String)]) -> Vec<String> {
    routes
        .iter()
        .filter(|(method, path)| doc["paths"][path.as_str()][method.to_lowercase()].is_null())
        .map(|(m, p)| format!("{m} {p}"))
        .collect()
}

fn mounted() -> Vec<(String, String)> {
    flare::http::routes::endpoints()
        .iter()
        .flat_map(|e| {
            e.methods()
                .map(|m| (m.to_string(), e.path.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_mounted_route_is_documented() {
    let routes = mounted();
    assert!(
        routes.len() >= 20,
        "the route table looks empty: {routes:?}"
    );
    assert_eq!(undocumented(doc(), &routes), Vec::<String>::new());
}

#[test]
fn a_route_missing_from_the_document_is_caught() {
    // The same check, fed a document with one route taken out, must name that route.
    let mut trimmed = doc().clone();
    trimmed["paths"]["/api/video/{id}"]
        .as_object_mut()
        .unwrap()
        .remove("delete");
    assert_eq!(
        undocumented(&trimmed, &mounted()),
        vec!["DELETE /api/video/{id}".to_string()]
    );
    let mut extra = mounted();
    extra.push(("GET".into(), "/api/new-thing".into()));
    assert_eq!(
        undocumented(doc(), &extra),
        vec!["GET /api/new-thing".to_string()]
    );
}

#[test]
fn the_document_is_served_and_is_openapi_3_1() {
    let app = TestApp::spawn();
    let res = app.send("GET", "/api/openapi.json", &[], b"");
    assert_eq!(res.status, 200);
    let mut served = res.json();
    assert_eq!(served["openapi"], "3.1.0");
    // `servers` is this server's public URL; the rest is the document as shipped.
    assert_eq!(served["servers"], json!([{ "url": app.base }]));
    served["servers"] = doc()["servers"].clone();
    assert_eq!(&served, doc());
    // Every operation has an id, and no two share one (generated clients name methods by it).
    let mut ids = std::collections::HashSet::new();
    for (path, ops) in doc()["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        }
    }
    assert!(ids.len() >= 22, "{ids:?}");
    // Every operation with a scope names it, and every $ref points at something.
    let text = flare::http::routes::OPENAPI_JSON;
    for (i, m) in text.match_indices("\"$ref\": \"#/components/") {
        let rest = &text[i + m.len() - "/components/".len()..];
        let pointer = &rest[..rest.find('"').unwrap()];
        assert!(doc().pointer(pointer).is_some(), "dangling $ref {pointer}");
    }
}

#[test]
fn the_body_check_rejects_a_body_that_breaks_the_schema() {
    let video = json!({ "success": true, "video": { "id": "x" } });
    let res = Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: video.to_string().into_bytes(),
    };
    let caught = std::panic::catch_unwind(|| check("GET", "/api/video/x", &res));
    assert!(
        caught.is_err(),
        "a Video without its fields passed the schema"
    );
}

#[test]
fn the_presign_schema_never_refuses_a_file_name_the_server_takes() {
    // A client that checks its request against the document first must never be stopped from
    // sending one the server would take; the names it does let through may still be refused
    // (`..`, look-alikes, whitespace, over 255 bytes: the description says so).
    let app = TestApp::spawn();
    let video_id = app.create_video("a.mp4");
    let schema = json!({ "$ref": "#/components/schemas/PresignRequest" });
    // Every extension the server knows, in lower, upper and mixed case: a new one added to the
    // server but not to the document fails here.
    let mut names: Vec<String> = Vec::new();
    for (ext, _) in flare::domain::names::CONTENT_TYPES {
        let mixed: String = ext
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        names.push(format!("clip.{ext}"));
        names.push(format!("CLIP.{}", ext.to_ascii_uppercase()));
        names.push(format!("é clip.{mixed}"));
    }
    let supported = names.len();
    names.extend(
        [
            "a..b.mp4",
            " a.mp4",
            "a.txt",
            "a",
            "mp4",
            ".mp4",
            ".a.mp4",
            "a/b.mp4",
            "a\\b.mp4",
            "a\u{1}.mp4",
            "a\u{85}.mp4",
            "a.mp4.exe",
            "a.mp4 ",
            "a\u{2215}b.mp4",
        ]
        .map(String::from),
    );
    for (i, name) in names.iter().enumerate() {
        let body = json!({ "videoId": video_id, "fileName": name });
        let documented = conforms(&schema, &body);
        let res = app.api("POST", "/api/video/upload/presign", Some(body));
        if i < supported {
            assert_eq!(res.status, 200, "{name:?}: {}", res.text());
            assert!(
                documented.is_ok(),
                "{name:?} is taken but the schema refuses it: {documented:?}"
            );
        } else {
            assert_eq!(res.status, 400, "{name:?}: {}", res.text());
        }
    }
    // And the pattern does refuse what it is there for.
    for name in ["a.txt", ".mp4", "a/b.mp4", "a\u{1}.mp4", "a.mp4.exe"] {
        let body = json!({ "videoId": video_id, "fileName": name });
        assert!(
            conforms(&schema, &body).is_err(),
            "{name:?} passes the schema"
        );
    }
}

/// The documented path template that `path` falls under, preferring literal segments.
fn template_for(path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.split('/').collect();
    doc()["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|tpl| {
            let t: Vec<&str> = tpl.split('/').collect();
            if t.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (a, b) in t.iter().zip(&segs) {
                if a.starts_with('{') {
                    if b.is_empty() {
                        return None;
                    }
                } else if a == b {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, tpl.as_str()))
        })
        .max()
        .map(|(_, t)| t)
}

fn resolve(v: &Value) -> &Value {
    match v["$ref"].as_str() {
        Some(r) => doc()
            .pointer(&r[1..])
            .unwrap_or_else(|| panic!("dangling {r}")),
        None => v,
    }
}

fn validate(schema: &Value, body: &Value, what: &str) {
    if let Err(e) = conforms(schema, body) {
        panic!("{what}: the body does not match the OpenAPI schema: {e}\nbody: {body}");
    }
}

/// Whether `body` matches `schema` (a schema of the document, or a `$ref` into it).
fn conforms(schema: &Value, body: &Value) -> Result<(), String> {
    static CACHE: OnceLock<Mutex<HashMap<String, jsonschema::Validator>>> = OnceLock::new();
    let key = schema.to_string();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let validator = cache.entry(key).or_insert_with(|| {
        let mut root = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "components": doc()["components"] });
        root.as_object_mut().unwrap().extend(schema.as_object().unwrap().clone());
        jsonschema::validator_for(&root).expect("the schema compiles")
    });
    validator.validate(body).map_err(|e| e.to_string())
}

/// Checks a JSON response against the document: its status must be documented for the
/// operation, and its body must match that response's schema. Errors always match `Error`.
pub fn check(method: &str, path: &str, res: &Response) {
    let json_body = res
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json_body || method == "HEAD" || res.body.is_empty() {
        return;
    }
    let body: Value = match serde_json::from_slice(&res.body) {
        Ok(v) => v,
        Err(e) => panic!("{method} {path}: content-type is JSON but the body is not ({e})"),
    };
    let what = format!("{method} {path} -> {}", res.status);
    if res.status >= 400 {
        validate(
            &json!({ "$ref": "#/components/schemas/Error" }),
            &body,
            &what,
        );
    }
    let path_only = path.split('?').next().unwrap();
    let Some(tpl) = template_for(path_only) else {
        return;
    };
    let op = &doc()["paths"][tpl][method.to_lowercase()];
    if op.is_null() {
        return; // An undocumented method on a documented path: the 405 checked above.
    }
    let response = resolve(&op["responses"][res.status.to_string()]);
    assert!(
        !response.is_null(),
        "{what}: status {} is not documented for {method} {tpl}",
        res.status
    );
    if let Some(schema) = response["content"]["application/json"]["schema"].as_object() {
        validate(&Value::Object(schema.clone()), &body, &what);
    }
}
