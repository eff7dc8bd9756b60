//! Trace spans for the phases of one Invoke inside the SDK — request signing and the
//! HTTP exchange — and trace propagation to Lambda: the HTTP exchange's span context
//! goes out as W3C `traceparent` and as `X-Amzn-Trace-Id`, which Lambda hands to the
//! function (`Lambda-Runtime-Trace-Id`) and to X-Ray.
//!
//! One interceptor per call, holding the call's span explicitly: the SDK's own spans
//! (when logging enables them) must not become the parents.

use crate::telemetry::traces;
use aws_sdk_lambda::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::error::BoxError;
use std::sync::Mutex;
use tracing::Span;

/// Spans for the signing and transmit phases of one call, children of `parent`.
#[derive(Debug)]
pub struct TraceInterceptor {
    parent: Span,
    signing: Mutex<Option<Span>>,
    transmit: Mutex<Option<Span>>,
}

impl TraceInterceptor {
    /// For a call made inside `parent`.
    pub fn new(parent: Span) -> Self {
        Self {
            parent,
            signing: Mutex::new(None),
            transmit: Mutex::new(None),
        }
    }
}

fn put(slot: &Mutex<Option<Span>>, span: Option<Span>) {
    if let Ok(mut s) = slot.lock() {
        *s = span;
    }
}

impl Intercept for TraceInterceptor {
    fn name(&self) -> &'static str {
        "owl.TraceInterceptor"
    }

    fn read_before_signing(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let span = tracing::info_span!(target: traces::PHASE, parent: &self.parent, "lambda.sign");
        put(&self.signing, Some(span));
        Ok(())
    }

    fn read_after_signing(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        put(&self.signing, None);
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let span = tracing::info_span!(
            target: traces::PHASE,
            parent: &self.parent,
            "lambda.http",
            otel.kind = "client",
            http.request.method = "POST",
            http.response.status_code = tracing::field::Empty,
        );
        if let Some(sc) = traces::span_context(&span) {
            let headers = context.request_mut().headers_mut();
            headers.insert("traceparent", traces::traceparent(&sc));
            headers.insert("x-amzn-trace-id", traces::amzn_trace_id(&sc));
        }
        put(&self.transmit, Some(span));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut s) = self.transmit.lock()
            && let Some(span) = s.take()
        {
            span.record(
                "http.response.status_code",
                context.response().status().as_u16(),
            );
        }
        Ok(())
    }
}
