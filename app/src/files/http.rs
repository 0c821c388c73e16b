//! `POST /api/files?room=…&name=…` (the body is the file's bytes) and `GET /api/files/{id}` (and
//! `/thumbnail`): plain axum handlers, since files are bytes, not JSON. Downloads are checked on every
//! request (`Cache-Control: private, no-cache` with an ETag: the browser asks again and gets 304),
//! answer single byte ranges, and anything but our re-encoded images is an attachment, never shown.
//! `POST /api/profile/picture` (the body is the image) and `DELETE` set and remove the caller's
//! profile picture.

use super::{pictures, service};
use crate::auth::cookies::SessionCookies;
use crate::auth::sessions::{authenticate, Authenticated};
use crate::error::{error_response, AppError};
use crate::model::{FileId, RoomId};
use crate::state::AppState;
use crate::store::{FilePart, FileRecord};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Nothing in a served file may run, load or be framed.
const FILE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'";

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Authenticated, AppError> {
    let cookies = SessionCookies::from_headers(headers, state.auth.cookie_names());
    let me = authenticate(state, &cookies).await?;
    if me.user.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    Ok(me)
}

#[derive(Deserialize)]
pub struct UploadQuery {
    room: String,
    name: Option<String>,
}

/// Stores the request body as a file for `room`; answers its `FileView`. A body over the limit is
/// refused with 413 while it is read, before anything is stored.
pub async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let answer = async {
        let me = caller(&state, request.headers()).await?;
        let room: RoomId = query
            .room
            .parse()
            .map_err(|_| AppError::invalid("room", "That is not a room."))?;
        let bytes = body_within_limit(&state, request).await?;
        service::upload(
            &state,
            &me,
            room,
            query.name.as_deref().unwrap_or("file"),
            bytes,
        )
        .await
    }
    .await;
    match answer {
        Ok(view) => (StatusCode::CREATED, axum::Json(view)).into_response(),
        Err(error) => error_response(&error),
    }
}

/// The request's body, refused with 413 as soon as it is known to pass `MAX_UPLOAD_BYTES` (by its
/// declared length, or while it is read).
async fn body_within_limit(state: &AppState, request: Request) -> Result<Vec<u8>, AppError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.uploads.max_bytes) {
        return Err(AppError::PayloadTooLarge);
    }
    let limit = usize::try_from(state.uploads.max_bytes).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    Ok(bytes.to_vec())
}

/// `POST /api/profile/picture`: the body becomes the caller's profile picture; answers
/// `{"avatar": id}`.
pub async fn set_picture(State(state): State<AppState>, request: Request) -> Response {
    let answer = async {
        let me = caller(&state, request.headers()).await?;
        let bytes = body_within_limit(&state, request).await?;
        pictures::set_picture(&state, &me, bytes).await
    }
    .await;
    match answer {
        Ok(id) => axum::Json(serde_json::json!({ "avatar": id })).into_response(),
        Err(error) => error_response(&error),
    }
}

/// `DELETE /api/profile/picture`.
pub async fn remove_picture(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let answer = async {
        let me = caller(&state, &headers).await?;
        pictures::remove_picture(&state, &me).await
    }
    .await;
    match answer {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(&error),
    }
}

/// `GET /api/files/usage`: what the caller's files take, and their quota.
pub async fn usage(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let answer = async {
        let me = caller(&state, &headers).await?;
        let used = state.store.file_bytes_of(me.user.id).await?;
        Ok::<_, AppError>(serde_json::json!({ "used": used, "quota": state.uploads.quota_bytes }))
    }
    .await;
    match answer {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error_response(&error),
    }
}

pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(state, id, FilePart::Original, headers).await
}

pub async fn thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(state, id, FilePart::Thumbnail, headers).await
}

async fn serve(state: AppState, id: String, part: FilePart, headers: HeaderMap) -> Response {
    let answer = async {
        let me = caller(&state, &headers).await?;
        let id: FileId = id.parse().map_err(|_| AppError::not_found("That file"))?;
        let file = service::openable(&state, &me, id).await?;
        let blob = file
            .blob(part)
            .cloned()
            .ok_or_else(|| AppError::not_found("That file"))?;
        let etag = format!(
            "\"{}{}\"",
            blob.sha256,
            if part == FilePart::Thumbnail {
                "-t"
            } else {
                ""
            }
        );
        if headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            return Ok(with_file_headers(
                StatusCode::NOT_MODIFIED.into_response(),
                &file,
                &etag,
            ));
        }
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            None => None,
            Some(asked) => match parse_range(asked, blob.size) {
                Some(range) => Some(range),
                None => {
                    let mut refused = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", blob.size)) {
                        refused.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return Ok(refused);
                }
            },
        };
        let bytes = service::read(&state, &file, part, range).await?;
        let mut response = match range {
            Some((start, end)) => {
                let mut partial =
                    (StatusCode::PARTIAL_CONTENT, Body::from(Bytes::from(bytes))).into_response();
                if let Ok(v) =
                    HeaderValue::from_str(&format!("bytes {start}-{}/{}", end - 1, blob.size))
                {
                    partial.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                partial
            }
            None => Body::from(Bytes::from(bytes)).into_response(),
        };
        let content_type = match part {
            FilePart::Thumbnail => file.content_type.as_str(),
            FilePart::Original if service::shown_inline(&file.content_type) => {
                file.content_type.as_str()
            }
            FilePart::Original => "application/octet-stream",
        };
        if let Ok(v) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        Ok(with_file_headers(response, &file, &etag))
    }
    .await;
    answer.unwrap_or_else(|error| error_response(&error))
}

/// The headers every answer about a file carries.
fn with_file_headers(mut response: Response, file: &FileRecord, etag: &str) -> Response {
    let headers = response.headers_mut();
    let inline = service::shown_inline(&file.content_type);
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        crate::domain::text::percent_encode(&file.name)
    );
    for (name, value) in [
        (header::ETAG, etag.to_owned()),
        (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CONTENT_SECURITY_POLICY, FILE_CSP.to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// `[start, end)` of a single `bytes=` range within `size`; `None` when unsatisfiable or not one
/// range we answer (several ranges, other units).
pub fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        // The last N bytes.
        let n: u64 = last.parse().ok()?;
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            size
        } else {
            last.parse::<u64>().ok()?.saturating_add(1).min(size)
        };
        (start, end)
    };
    (start < end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn single_byte_ranges_are_understood() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-5", 100), Some((95, 100)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=-0", 100), None);
    }
}
