//! Uploads from the browser: each file on a request of its own (`POST /api/files`), with progress,
//! cancellable, answered with the stored file's view. A composer keeps its uploads here until the
//! message that carries them is sent.

use super::FileView;
use crate::model::RoomId;
use leptos::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    /// On its way: the share of its bytes sent, 0-100.
    Sending(u8),
    Done(FileView),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub key: u64,
    pub name: String,
    pub size: u64,
    pub state: UploadState,
}

/// One composer's uploads: the list it shows, and (in the browser) the requests in flight.
#[derive(Clone, Copy)]
pub struct Uploads {
    pub list: RwSignal<Vec<Upload>>,
    /// What the person wrote to describe each image, by upload (apart from `list`, so typing does
    /// not redraw the tray).
    alts: StoredValue<std::collections::HashMap<u64, String>>,
    #[cfg(feature = "hydrate")]
    next: StoredValue<u64>,
    #[cfg(feature = "hydrate")]
    requests: StoredValue<std::collections::HashMap<u64, web_sys::XmlHttpRequest>, LocalStorage>,
}

impl Default for Uploads {
    fn default() -> Self {
        Self::new()
    }
}

impl Uploads {
    pub fn new() -> Self {
        Self {
            list: RwSignal::new(Vec::new()),
            alts: StoredValue::new(Default::default()),
            #[cfg(feature = "hydrate")]
            next: StoredValue::new(0),
            #[cfg(feature = "hydrate")]
            requests: StoredValue::new_local(Default::default()),
        }
    }

    /// The files uploaded and ready to go with the message, in the order they were added, with
    /// the descriptions written for them.
    pub fn ready(&self) -> Vec<FileView> {
        let alts = self.alts.get_value();
        self.list.with_untracked(|list| {
            list.iter()
                .filter_map(|u| match &u.state {
                    UploadState::Done(file) => Some(FileView {
                        alt: alts.get(&u.key).filter(|a| !a.trim().is_empty()).cloned(),
                        ..file.clone()
                    }),
                    _ => None,
                })
                .collect()
        })
    }

    /// Keeps the description written for upload `key` (an image).
    pub fn describe(&self, key: u64, alt: String) {
        self.alts.update_value(|alts| {
            alts.insert(key, alt);
        });
    }

    /// The description written for upload `key` so far.
    pub fn description(&self, key: u64) -> String {
        self.alts
            .with_value(|alts| alts.get(&key).cloned())
            .unwrap_or_default()
    }

    /// Whether a file is still on its way (the message waits for it).
    pub fn busy(&self) -> bool {
        self.list.with(|list| {
            list.iter()
                .any(|u| matches!(u.state, UploadState::Sending(_)))
        })
    }

    /// `busy`, outside the reactive graph (in event handlers).
    pub fn busy_untracked(&self) -> bool {
        self.list.with_untracked(|list| {
            list.iter()
                .any(|u| matches!(u.state, UploadState::Sending(_)))
        })
    }

    /// Forgets what was sent with a message.
    pub fn clear_ready(&self) {
        self.list
            .update(|list| list.retain(|u| !matches!(u.state, UploadState::Done(_))));
        let waiting: Vec<u64> = self
            .list
            .with_untracked(|l| l.iter().map(|u| u.key).collect());
        self.alts
            .update_value(|alts| alts.retain(|key, _| waiting.contains(key)));
    }

    /// Stops an upload on its way, or takes a finished one off the message (the server forgets
    /// uploads no message carries).
    pub fn remove(&self, key: u64) {
        #[cfg(feature = "hydrate")]
        if let Some(request) = self.requests.try_update_value(|r| r.remove(&key)).flatten() {
            let _ = request.abort();
        }
        self.list.update(|list| list.retain(|u| u.key != key));
        self.alts.update_value(|alts| {
            alts.remove(&key);
        });
    }

    #[cfg(feature = "hydrate")]
    fn set_state(&self, key: u64, state: UploadState) {
        self.list.update(|list| {
            if let Some(upload) = list.iter_mut().find(|u| u.key == key) {
                upload.state = state;
            }
        });
    }

    #[cfg(feature = "hydrate")]
    fn add(&self, name: String, size: u64) -> u64 {
        let key = self.next.get_value();
        self.next.set_value(key + 1);
        self.list.update(|list| {
            list.push(Upload {
                key,
                name,
                size,
                state: UploadState::Sending(0),
            })
        });
        key
    }

    /// Starts uploading `files` to `room`, each shown at once.
    #[cfg(feature = "hydrate")]
    pub fn start(&self, room: RoomId, files: Vec<web_sys::File>) {
        for file in files {
            let key = self.add(file.name(), file.size() as u64);
            self.send(room, key, file, true);
        }
    }

    /// Uploads are started by the browser only; the server renders the empty list.
    #[cfg(not(feature = "hydrate"))]
    pub fn start(&self, _room: RoomId, _files: Vec<web_sys::File>) {}

    #[cfg(feature = "hydrate")]
    fn send(&self, room: RoomId, key: u64, file: web_sys::File, renew_once: bool) {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let this = *self;
        let failed = move |why: String| this.set_state(key, UploadState::Failed(why));
        let Ok(request) = web_sys::XmlHttpRequest::new() else {
            return failed("This browser cannot upload files.".into());
        };
        let name = js_sys::encode_uri_component(&file.name());
        let url = format!("/api/files?room={room}&name={name}");
        if request.open_with_async("POST", &url, true).is_err() {
            return failed("The upload could not start.".into());
        }
        if let Ok(target) = request.upload() {
            let progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(
                move |e: web_sys::ProgressEvent| {
                    if e.length_computable() && e.total() > 0.0 {
                        let percent = (e.loaded() / e.total() * 100.0).clamp(0.0, 99.0) as u8;
                        this.set_state(key, UploadState::Sending(percent));
                    }
                },
            );
            target.set_onprogress(Some(progress.as_ref().unchecked_ref()));
            // Lives as long as the request (a few per message).
            progress.forget();
        }
        let answered = request.clone();
        let body = file.clone();
        let done = Closure::once_into_js(move || {
            // Removed (cancelled) meanwhile: nothing to show.
            if this
                .requests
                .try_update_value(|r| r.remove(&key))
                .flatten()
                .is_none()
            {
                return;
            }
            let status = answered.status().unwrap_or(0);
            let text = answered.response_text().ok().flatten().unwrap_or_default();
            if status == 201 {
                match serde_json::from_str::<FileView>(&text) {
                    Ok(view) => this.set_state(key, UploadState::Done(view)),
                    Err(_) => failed("The server's answer could not be read.".into()),
                }
                return;
            }
            let error = serde_json::from_str::<crate::error::AppError>(&text).ok();
            if renew_once && matches!(error, Some(crate::error::AppError::SessionExpired)) {
                leptos::task::spawn_local(async move {
                    match crate::auth::client::renew().await {
                        Ok(_) => this.send(room, key, file, false),
                        Err(e) => failed(e.to_string()),
                    }
                });
                return;
            }
            failed(match (status, error) {
                (_, Some(error)) => error.to_string(),
                (0, None) => "The upload was cut off. Check the connection and try again.".into(),
                (status, None) => format!("The upload failed (error {status})."),
            });
        });
        request.set_onloadend(Some(done.unchecked_ref()));
        self.requests.update_value(|r| {
            r.insert(key, request.clone());
        });
        if request.send_with_opt_blob(Some(&body)).is_err() {
            self.requests.update_value(|r| {
                r.remove(&key);
            });
            failed("The upload could not start.".into());
        }
    }
}

/// The files of a file list (a picker's choice, a drop, a paste).
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}
