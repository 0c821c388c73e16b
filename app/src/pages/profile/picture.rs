//! The profile page's "Profile picture" card: choose an image (the server cuts its middle to a
//! square and strips what rides along in it) or remove it; the others see it beside the person's
//! messages and in member lists.

use crate::components::avatar::Avatar;
use crate::components::form::{Card, Notice};
use crate::error::AppError;
use crate::model::{FileId, UserId};
use leptos::prelude::*;

#[component]
pub fn PictureCard(user: UserId, name: String, current: Option<FileId>) -> impl IntoView {
    let picture = RwSignal::new(current);
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<String>);
    let problem = RwSignal::new(None::<String>);
    let input = NodeRef::<leptos::html::Input>::new();
    // Sends the chosen file (or, with `None`, the removal) and shows the outcome.
    let change = move |file: Option<web_sys::File>| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        notice.set(None);
        problem.set(None);
        leptos::task::spawn_local(async move {
            let removing = file.is_none();
            match send_renewing(file).await {
                Ok(now) => {
                    picture.set(now);
                    notice.set(Some(
                        if removing {
                            "Profile picture removed: your initials are shown again."
                        } else {
                            "Profile picture saved."
                        }
                        .to_owned(),
                    ));
                }
                Err(error) => problem.set(Some(error.to_string())),
            }
            if let Some(input) = input.get_untracked() {
                input.set_value("");
            }
            busy.set(false);
        });
    };
    let chosen = move |_| {
        let file = input
            .get_untracked()
            .and_then(|i| i.files())
            .and_then(|files| files.get(0));
        if file.is_some() {
            change(file);
        }
    };
    view! {
        <Card title="Profile picture" region=true>
            <div class="space-y-4">
                <Notice message=notice />
                {move || problem.get().map(|p| view! {
                    <p role="alert" class="text-sm text-red-700 dark:text-red-400">{p}</p>
                })}
                <div class="flex flex-wrap items-center gap-4">
                    {move || view! { <Avatar user name=name.clone() picture=picture.get() large=true /> }}
                    <div class="flex flex-wrap gap-2">
                        <label class="inline-flex cursor-pointer justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus-within:outline focus-within:outline-2 focus-within:outline-offset-2 focus-within:outline-indigo-500">
                            {move || if busy.get() { "Working…" } else { "Choose a picture" }}
                            <input
                                node_ref=input
                                type="file"
                                accept="image/png,image/jpeg,image/gif,image/webp"
                                class="sr-only"
                                disabled=move || busy.get()
                                on:change=chosen
                            />
                        </label>
                        <Show when=move || picture.get().is_some()>
                            <button
                                type="button"
                                on:click=move |_| change(None)
                                disabled=move || busy.get()
                                class="inline-flex justify-center rounded-md border border-slate-300 px-4 py-2 text-sm font-semibold text-slate-800 hover:bg-slate-100 dark:border-slate-600 dark:text-slate-100 dark:hover:bg-slate-800"
                            >
                                "Remove picture"
                            </button>
                        </Show>
                    </div>
                </div>
                <p class="text-sm text-slate-600 dark:text-slate-300">
                    "A PNG, JPEG, GIF or WebP image; its middle is cut to a square. Anyone signed in can see it."
                </p>
            </div>
        </Card>
    }
}

/// `send`, renewing the session once when its access token has run out.
#[cfg(feature = "hydrate")]
async fn send_renewing(file: Option<web_sys::File>) -> Result<Option<FileId>, AppError> {
    crate::auth::client::with_renewal(|| send(file.clone())).await
}

/// Pictures are sent by the browser only.
#[cfg(not(feature = "hydrate"))]
async fn send_renewing(_file: Option<web_sys::File>) -> Result<Option<FileId>, AppError> {
    Err(AppError::Transport {
        message: "pictures are sent from the browser".to_owned(),
    })
}

/// `POST /api/profile/picture` with the file, or `DELETE` without one; the picture now.
#[cfg(feature = "hydrate")]
async fn send(file: Option<web_sys::File>) -> Result<Option<FileId>, AppError> {
    use gloo_net::http::Request;
    let transport = |e: gloo_net::Error| AppError::Transport {
        message: e.to_string(),
    };
    let response = match file {
        Some(file) => {
            Request::post("/api/profile/picture")
                .body(file)
                .map_err(transport)?
                .send()
                .await
        }
        None => Request::delete("/api/profile/picture").send().await,
    }
    .map_err(transport)?;
    if response.status() == 204 {
        return Ok(None);
    }
    let text = response.text().await.map_err(transport)?;
    if !response.ok() {
        return Err(serde_json::from_str::<AppError>(&text).unwrap_or_else(|_| {
            AppError::Transport {
                message: format!("the server answered {}", response.status()),
            }
        }));
    }
    #[derive(serde::Deserialize)]
    struct Saved {
        avatar: FileId,
    }
    serde_json::from_str::<Saved>(&text)
        .map(|saved| Some(saved.avatar))
        .map_err(|e| AppError::Transport {
            message: format!("the server's answer could not be read: {e}"),
        })
}
