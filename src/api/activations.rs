//! The activations API for records owl holds (embedded store):
//! `GET /api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]`.
//!
//! owl answers a get when it holds the id in the caller's namespace and proxies
//! everything else, so the controller keeps answering for its own activations and for
//! every error (other namespaces, malformed ids). A list is the merge of owl's records
//! and the controller's list: newest first, with `skip` / `limit` applied to the merged
//! sequence, so paging stays correct across both sources.

use crate::activation::query;
use crate::activation::{ActivationReader, ListQuery};
use crate::auth::{Caller, Identity};
use crate::context::RequestContext;
use crate::controller::proxy;
use crate::error::{WhiskError, add_cors};
use crate::gateway::{Gateway, Snapshot};
use crate::net::encode_segment;
use crate::whisk::{ActivationId, transaction};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;

/// The parts of an activations API path: namespace, id, sub-resource.
pub(crate) type ActivationsTarget = (String, Option<String>, Option<String>);

/// Splits `/api/v1/namespaces/{ns}/activations[/{id}[/{sub}]]`.
pub(crate) fn split_path(path: &str) -> Option<ActivationsTarget> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let mut it = rest.splitn(4, '/');
    let ns = it.next().filter(|s| !s.is_empty())?;
    if it.next()? != "activations" {
        return None;
    }
    let id = it.next().filter(|s| !s.is_empty()).map(str::to_string);
    let sub = it.next().map(str::to_string);
    // `activations//logs` names no activation: not a list; the controller answers it.
    if id.is_none() && sub.is_some() {
        return None;
    }
    let ns = percent_encoding::percent_decode_str(ns)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some((ns, id, sub))
}

fn json_response(status: StatusCode, body: &Value, ctx: &RequestContext) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_cors(&mut h);
    if let Ok(v) = HeaderValue::from_str(ctx.tid.as_str()) {
        h.insert(transaction::HEADER, v);
    }
    (status, h, serde_json::to_vec(body).unwrap_or_default()).into_response()
}

/// Handles a `GET` on the activations API.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    rt: Arc<Snapshot>,
    req: Request<Body>,
    ctx: RequestContext,
    (ns, id, sub): ActivationsTarget,
) -> Response {
    let Some(reader) = gw.recorder().reader() else {
        // The controller reads the shared database itself.
        return proxy::forward(&rt.controller, req, &ctx).await;
    };
    let Ok(caller) = Caller::from_headers(req.headers(), rt.directory.bearer_enabled()) else {
        return proxy::forward(&rt.controller, req, &ctx).await;
    };
    let identified = ctx
        .timings
        .time(
            crate::telemetry::timing::Phase::Auth,
            crate::telemetry::traces::start("auth")
                .instrument(rt.directory.identify(&caller, &ctx.tid)),
        )
        .await;
    let identity = match identified {
        Ok(i) => i,
        Err(e) => return e.render(&ctx.tid),
    };
    let ns = if ns == "_" {
        identity.namespace.clone()
    } else {
        ns
    };
    if ns != identity.namespace {
        // Only the owner reads activations: the controller's 403.
        return proxy::forward(&rt.controller, req, &ctx).await;
    }
    let Some(id) = id else {
        return list(&rt, reader, req, &ctx, &identity, &ns).await;
    };
    let Ok(aid) = id.parse::<ActivationId>() else {
        return proxy::forward(&rt.controller, req, &ctx).await;
    };
    let act = match reader.get(&ns, &aid).await {
        Ok(Some(a)) => a,
        Ok(None) => return proxy::forward(&rt.controller, req, &ctx).await,
        Err(e) => {
            tracing::warn!(tid = %ctx.tid, error = %e, "activation store read failed");
            return proxy::forward(&rt.controller, req, &ctx).await;
        }
    };
    match sub.as_deref() {
        None | Some("") => json_response(StatusCode::OK, &act.to_api_json(true), &ctx),
        Some("logs") => json_response(StatusCode::OK, &json!({ "logs": act.logs }), &ctx),
        Some("result") => json_response(StatusCode::OK, &act.response.to_api_json(), &ctx),
        Some(_) => proxy::forward(&rt.controller, req, &ctx).await,
    }
}

/// Largest activation record owl reads from the controller in a list: a result at
/// the truncation limit (1 MiB), logs at their largest limit (10 MiB), and the rest.
const MAX_RECORD_BYTES: usize = 12 * 1024 * 1024;
/// Largest summary record (`docs=false`) or count answer.
const MAX_SUMMARY_BYTES: usize = 16 * 1024;
/// Largest list answer owl reads from the controller, whatever the page.
const MAX_LIST_BYTES: usize = 256 * 1024 * 1024;

fn start_and_id(v: &Value) -> (i64, String) {
    (
        v.get("start").and_then(Value::as_i64).unwrap_or(0),
        v.get("activationId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

async fn list(
    rt: &Snapshot,
    reader: &dyn ActivationReader,
    req: Request<Body>,
    ctx: &RequestContext,
    identity: &Identity,
    ns: &str,
) -> Response {
    let q = match query::parse_with(req.uri().query(), rt.policy.openwhisk.list_limit) {
        Ok(q) => q,
        Err(e) => return e.render(&ctx.tid),
    };
    if q.count {
        let mine = match reader.count(ns, &q).await {
            Ok(n) => n,
            Err(e) => return store_failure(e, ctx),
        };
        let theirs = match controller_list(rt, ctx, identity, ns, &q, 0, 0, true).await {
            Ok(Value::Object(o)) => o.get("activations").and_then(Value::as_u64).unwrap_or(0),
            Ok(_) => 0,
            Err(resp) => return resp,
        };
        let total = (mine + theirs).saturating_sub(q.skip);
        return json_response(StatusCode::OK, &json!({ "activations": total }), ctx);
    }
    // The merged list is owl's records (A) and the controller's (B), newest first. The
    // page is A[a..a+limit) and B[skip-a..skip-a+limit) merged, where `a` is how many
    // of owl's records come before position `skip`. `a` is found by bisection over
    // owl's own (local, cheap) records: record A[i] precedes position `skip` iff
    // i + |B newer than A[i]| < skip, one count request per step. So a list costs
    // memory in proportion to `limit` and at most 1 + ⌈log2(min(skip, |A|) + 1)⌉
    // controller requests, whatever `skip` is — never `skip / 200` pages.
    let local_total = match reader.count(ns, &q).await {
        Ok(n) => n,
        Err(e) => return store_failure(e, ctx),
    };
    let (mut lo, mut hi) = (0u64, q.skip.min(local_total));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let probe = ListQuery {
            skip: mid,
            limit: 1,
            ..q.clone()
        };
        let start = match reader.list(ns, &probe).await {
            Ok(v) => match v.first() {
                Some(a) => a.start,
                None => break,
            },
            Err(e) => return store_failure(e, ctx),
        };
        // Ties on `start` put owl's record first, as the merge below does.
        let newer = ListQuery {
            since: Some(q.since.map_or(start + 1, |s| s.max(start + 1))),
            ..q.clone()
        };
        // An empty range is not asked: CouchDB refuses an inverted key range (the
        // controller would answer 500).
        let newer_remote = if q.upto.is_some_and(|u| start >= u) {
            0
        } else {
            match controller_list(rt, ctx, identity, ns, &newer, 0, 0, true).await {
                Ok(Value::Object(o)) => o.get("activations").and_then(Value::as_u64).unwrap_or(0),
                Ok(_) => 0,
                Err(resp) => return resp,
            }
        };
        if mid + newer_remote >= q.skip {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let local_skip = lo;
    let mine = match reader
        .list(
            ns,
            &ListQuery {
                skip: local_skip,
                ..q.clone()
            },
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return store_failure(e, ctx),
    };
    let mut merged: Vec<(i64, Value)> = mine
        .iter()
        .map(|a| {
            let v = if q.docs {
                a.to_api_json(true)
            } else {
                a.to_summary_json()
            };
            (a.start, v)
        })
        .collect();
    let remote_skip = q.skip - local_skip;
    match controller_list(rt, ctx, identity, ns, &q, remote_skip, q.limit, false).await {
        Ok(Value::Array(a)) => merged.extend(a.into_iter().map(|v| (start_and_id(&v).0, v))),
        Ok(_) => {}
        Err(resp) => return resp,
    }
    // Stable: at equal `start`, owl's records stay before the controller's.
    merged.sort_by_key(|(start, _)| std::cmp::Reverse(*start));
    let page: Vec<Value> = merged
        .into_iter()
        .take(q.limit as usize)
        .map(|(_, v)| v)
        .collect();
    json_response(StatusCode::OK, &Value::Array(page), ctx)
}

fn store_failure(e: crate::activation::StoreError, ctx: &RequestContext) -> Response {
    tracing::error!(tid = %ctx.tid, error = %e, "activation store read failed");
    WhiskError::internal().render(&ctx.tid)
}

/// Asks the controller for its part of a list (or its count).
#[allow(clippy::too_many_arguments)]
async fn controller_list(
    rt: &Snapshot,
    ctx: &RequestContext,
    identity: &Identity,
    ns: &str,
    q: &ListQuery,
    skip: u64,
    limit: u64,
    count: bool,
) -> Result<Value, Response> {
    // A token holder without a service key cannot be represented to the controller:
    // only owl's own records are listed.
    let Some(key) = &identity.key else {
        return Ok(if count {
            json!({"activations": 0})
        } else {
            Value::Array(Vec::new())
        });
    };
    let mut query = if count {
        "count=true".to_string()
    } else {
        format!("skip={skip}&limit={limit}&docs={}", q.docs)
    };
    if let Some(n) = &q.name {
        query.push_str(&format!("&name={}", encode_segment(n)));
    }
    if let Some(s) = q.since {
        query.push_str(&format!("&since={s}"));
    }
    if let Some(u) = q.upto {
        query.push_str(&format!("&upto={u}"));
    }
    let uri = rt.controller.uri(&format!(
        "/api/v1/namespaces/{}/activations?{query}",
        encode_segment(ns)
    ));
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::AUTHORIZATION, key.authorization().clone())
        .header(header::ACCEPT, "application/json");
    if let Ok(v) = HeaderValue::from_str(ctx.tid.as_str()) {
        req = req.header(transaction::HEADER, v);
    }
    let mut req = req
        .body(Body::empty())
        .map_err(|_| WhiskError::internal().render(&ctx.tid))?;
    let span =
        crate::telemetry::traces::start_kind("controller", opentelemetry::trace::SpanKind::Client);
    if let Some(sc) = span.context() {
        crate::telemetry::traces::inject_context(&sc, req.headers_mut());
    }
    let started = std::time::Instant::now();
    let sent = rt.controller.send(req).await;
    drop(span);
    ctx.timings
        .add(crate::telemetry::timing::Phase::Upstream, started.elapsed());
    ctx.timings.add_awaited(started.elapsed());
    let resp = match sent {
        Ok(r) => r,
        Err(crate::controller::ControllerError::Timeout(_)) => {
            return Err(WhiskError::controller_timeout().render(&ctx.tid));
        }
        Err(crate::controller::ControllerError::Unreachable(_)) => {
            return Err(WhiskError::controller_unreachable().render(&ctx.tid));
        }
        Err(crate::controller::ControllerError::BodyStalled) => {
            return Err(WhiskError::body_stalled().render(&ctx.tid));
        }
    };
    let (parts, body) = resp.into_parts();
    // Bounded in time and size: a page holds at most `limit` records, each within
    // OpenWhisk's result and log limits.
    let per_record = if q.docs && !count {
        MAX_RECORD_BYTES
    } else {
        MAX_SUMMARY_BYTES
    };
    let max = (limit.max(1) as usize)
        .saturating_mul(per_record)
        .min(MAX_LIST_BYTES);
    let bytes = tokio::time::timeout(
        rt.policy.controller.timeout,
        http_body_util::Limited::new(body, max).collect(),
    )
    .await
    .map_err(|_| WhiskError::controller_timeout().render(&ctx.tid))?
    .map_err(|_| WhiskError::controller_unreachable().render(&ctx.tid))?
    .to_bytes();
    if !parts.status.is_success() {
        return Err(
            WhiskError::from_controller(parts.status, &parts.headers, bytes).render(&ctx.tid),
        );
    }
    serde_json::from_slice(&bytes).map_err(|_| WhiskError::internal().render(&ctx.tid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            split_path("/api/v1/namespaces/_/activations"),
            Some(("_".into(), None, None))
        );
        assert_eq!(
            split_path("/api/v1/namespaces/_/activations/"),
            Some(("_".into(), None, None))
        );
        assert_eq!(
            split_path("/api/v1/namespaces/guest/activations/abc/logs"),
            Some(("guest".into(), Some("abc".into()), Some("logs".into())))
        );
        assert_eq!(split_path("/api/v1/namespaces/guest/actions/x"), None);
        // issue 15 §14: no id, a sub-resource: not a list
        assert_eq!(
            split_path("/api/v1/namespaces/guest/activations//logs"),
            None
        );
        assert_eq!(
            split_path("/api/v1/namespaces/guest/activations//result"),
            None
        );
    }
}
