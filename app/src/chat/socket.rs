//! The websocket endpoint, `/api/ws`: one Leptos websocket server function carrying the protocol in
//! `crate::protocol`. The server's upgrade guard has already refused foreign origins (403) and callers
//! without a session (401) before the upgrade; this checks the session again.

use crate::protocol::{ClientMsg, ServerMsg};
use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::{BoxedStream, Websocket};

#[server(endpoint = "ws", protocol = Websocket<JsonEncoding, JsonEncoding>)]
pub async fn chat_socket(
    input: BoxedStream<ClientMsg, ServerFnError>,
) -> Result<BoxedStream<ServerMsg, ServerFnError>, ServerFnError> {
    use futures::StreamExt;
    let ctx =
        crate::request::RequestContext::get().map_err(|e| ServerFnError::new(e.to_string()))?;
    let me = ctx
        .user()
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    let input: std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<ClientMsg, ServerFnError>> + Send>,
    > = input.into();
    let frames = crate::chat::connection::open(ctx.state, me, input)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok(frames.map(Ok).boxed().into())
}
