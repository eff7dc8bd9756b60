//! The activations API for records owl holds (embedded store):
//! `GET /api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]`.
//!
//! owl answers a get when it holds the id in the caller's namespace and proxies
//! everything else, so the controller keeps answering for its own activations and for
//! every error (other namespaces, malformed ids). A list is the merge of owl's records
//! and the controller's list: newest first, with `skip` / `limit` applied to the merged
//! sequence, so paging stays correct across both sources.

use super::query;
use super::store::{ActivationReader, ListQuery};
use crate::auth::{Caller, Identity};
use crate::context::RequestContext;
use crate::controller::api::encode_segment;
use crate::controller::proxy;
use crate::error::{WhiskError, add_cors};
use crate::gateway::{Gateway, Runtime};
use crate::whisk::ActivationId;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;

/// The parts of an activations API path: namespace, id, sub-resource.
pub type ActivationsTarget = (String, Option<String>, Option<String>);

/// Splits `/api/v1/namespaces/{ns}/activations[/{id}[/{sub}]]`.
pub fn split_path(path: &str) -> Option<ActivationsTarget> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let mut it = rest.splitn(4, '/');
    let ns = it.next().filter(|s| !s.is_empty())?;
    if it.next()? != "activations" {
        return None;
    }
    let id = it.next().filter(|s| !s.is_empty()).map(str::to_string);
    let sub = it.next().map(str::to_string);
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
        h.insert("x-request-id", v);
    }
    (status, h, serde_json::to_vec(body).unwrap_or_default()).into_response()
}

/// Handles a `GET` on the activations API.
pub async fn handle(
    gw: Arc<Gateway>,
    rt: Arc<Runtime>,
    req: Request<Body>,
    ctx: RequestContext,
    (ns, id, sub): ActivationsTarget,
) -> Response {
    let Some(reader) = gw.recorder.reader() else {
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
    rt: &Runtime,
    reader: &dyn ActivationReader,
    req: Request<Body>,
    ctx: &RequestContext,
    identity: &Identity,
    ns: &str,
) -> Response {
    let q = match query::parse(req.uri().query()) {
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
    let wanted = q.skip + q.limit;
    let mine = match reader.list(ns, &q).await {
        Ok(v) => v,
        Err(e) => return store_failure(e, ctx),
    };
    let mut merged: Vec<Value> = mine
        .iter()
        .map(|a| {
            if q.docs {
                a.to_api_json(true)
            } else {
                a.to_summary_json()
            }
        })
        .collect();
    // The controller's newest `skip + limit`, in pages of at most 200.
    let mut fetched = 0;
    while fetched < wanted {
        let page = (wanted - fetched).min(query::MAX_LIMIT);
        let batch = match controller_list(rt, ctx, identity, ns, &q, fetched, page, false).await {
            Ok(Value::Array(a)) => a,
            Ok(_) => Vec::new(),
            Err(resp) => return resp,
        };
        let n = batch.len() as u64;
        merged.extend(batch);
        fetched += n;
        if n < page {
            break;
        }
    }
    merged.sort_by_key(|v| std::cmp::Reverse(start_and_id(v)));
    let page: Vec<Value> = merged
        .into_iter()
        .skip(q.skip as usize)
        .take(q.limit as usize)
        .collect();
    json_response(StatusCode::OK, &Value::Array(page), ctx)
}

fn store_failure(e: super::StoreError, ctx: &RequestContext) -> Response {
    tracing::error!(tid = %ctx.tid, error = %e, "activation store read failed");
    WhiskError::internal().render(&ctx.tid)
}

/// Asks the controller for its part of a list (or its count).
#[allow(clippy::too_many_arguments)]
async fn controller_list(
    rt: &Runtime,
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
        req = req.header("x-request-id", v);
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
    let bytes = body
        .collect()
        .await
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
    }
}
