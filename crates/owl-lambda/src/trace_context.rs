//! Trace spans for the phases of one Invoke inside the SDK — request signing and the
//! HTTP exchange — and trace propagation to Lambda: the HTTP exchange's span context
//! goes out as W3C `traceparent` and as `X-Amzn-Trace-Id`, which Lambda hands to the
//! function (`Lambda-Runtime-Trace-Id`) and to X-Ray.
//!
//! One interceptor for the client, installed when it is built: it finds the call's
//! place in the trace in the task-local current span (the SDK runs its hooks inside
//! the caller's future) and keeps the call's open spans in the call's own config bag.
//! With tracing off each hook returns at its first check — no per-call customisation,
//! which would cost the SDK a configuration rebuild on every call.

use aws_sdk_lambda::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use owl_telemetry::traces::{self, Guard};

/// Spans for the signing and transmit phases of each call, children of the current
/// span (`lambda.invoke`).
#[derive(Debug, Default)]
pub(crate) struct TraceInterceptor;

/// The open `lambda.sign` span of a call (ended when dropped).
#[derive(Debug)]
struct Signing {
    _span: Guard,
}

impl Storable for Signing {
    type Storer = StoreReplace<Self>;
}

/// The open `lambda.http` span of a call.
#[derive(Debug)]
struct Transmit(Guard);

impl Storable for Transmit {
    type Storer = StoreReplace<Self>;
}

impl Intercept for TraceInterceptor {
    fn name(&self) -> &'static str {
        "owl.TraceInterceptor"
    }

    fn read_before_signing(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(current) = traces::current() {
            let span = current.child("lambda.sign", SpanKind::Internal);
            // Only recorded spans are kept (an unsampled call has nothing to end).
            if span.recording() {
                cfg.interceptor_state().store_put(Signing { _span: span });
            }
        }
        Ok(())
    }

    fn read_after_signing(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if traces::enabled() && cfg.load::<Signing>().is_some() {
            // Dropping the guard ends the span.
            cfg.interceptor_state().unset::<Signing>();
        }
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(current) = traces::current() else {
            return Ok(());
        };
        let span = current.child("lambda.http", SpanKind::Client);
        span.set("http.request.method", "POST");
        if let Some(sc) = span.context() {
            let headers = context.request_mut().headers_mut();
            headers.insert("traceparent", traces::traceparent(&sc));
            headers.insert("x-amzn-trace-id", traces::amzn_trace_id(&sc));
        }
        if span.recording() {
            cfg.interceptor_state().store_put(Transmit(span));
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !traces::enabled() {
            return Ok(());
        }
        end_transmit(
            cfg,
            "http.response.status_code",
            i64::from(context.response().status().as_u16()),
        );
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !traces::enabled() {
            return Ok(());
        }
        // An attempt that failed before an answer (connect error, timeout) skips the
        // hooks above: its spans end here, the exchange marked as unanswered.
        // (Unset only what is still there: an unset is a write to the bag.)
        end_transmit(cfg, "error.type", "no_response");
        if cfg.load::<Signing>().is_some() {
            cfg.interceptor_state().unset::<Signing>();
        }
        Ok(())
    }
}

/// Ends the call's open `lambda.http` span, if any, with the attribute `key`.
fn end_transmit(cfg: &mut ConfigBag, key: &'static str, value: impl Into<Value>) {
    if let Some(Transmit(span)) = cfg.load::<Transmit>() {
        span.set(key, value);
        cfg.interceptor_state().unset::<Transmit>();
    }
}
