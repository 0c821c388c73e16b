//! `/login`: sign in, then go back to where the person was headed (`?next=`).

use crate::auth::{api::login, paths::safe_next};
use crate::components::form::{field_error, FormError, SubmitButton, TextField};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_query_map};

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = Memo::new(move |_| query.with(|q| safe_next(q.get("next").as_deref())));
    let reason = move || match query.with(|q| q.get("reason")).as_deref() {
        Some("signed_out") => Some("You were signed out. Please sign in again."),
        Some("disabled") => Some("This account has been disabled. Contact an administrator."),
        _ => None,
    };

    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (user, pass) = (username.get_untracked(), password.get_untracked());
        if user.trim().is_empty() {
            error.set(Some(AppError::invalid("username", "Enter your username.")));
            return;
        }
        if pass.is_empty() {
            error.set(Some(AppError::invalid("password", "Enter your password.")));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match login(user, pass).await {
                Ok(_) => {
                    let _ = window().location().assign(&next.get_untracked());
                }
                Err(e) => {
                    error.set(Some(e));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <Title text="Sign in" />
        <div class="mx-auto w-full max-w-sm px-4 py-10">
            <h1 class="mb-6 text-2xl font-semibold tracking-tight">"Sign in"</h1>
            {move || {
                reason()
                    .map(|message| {
                        view! {
                            <p
                                role="status"
                                class="mb-4 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900 dark:border-amber-900 dark:bg-amber-950 dark:text-amber-200"
                            >
                                {message}
                            </p>
                        }
                    })
            }}
            <form method="post" action="/api/auth/login" on:submit=on_submit class="space-y-4" novalidate>
                <FormError error />
                <TextField
                    label="Username"
                    name="username"
                    value=username
                    error=field_error(error, "username")
                    autocomplete="username"
                />
                <TextField
                    label="Password"
                    name="password"
                    kind="password"
                    value=password
                    error=field_error(error, "password")
                    autocomplete="current-password"
                />
                <SubmitButton label="Sign in" busy_label="Signing in…" busy />
            </form>
            <p class="mt-6 text-sm text-slate-600 dark:text-slate-400">
                "New here? "
                <A href="/register" attr:class="font-medium text-indigo-600 hover:underline dark:text-indigo-400">
                    "Create an account"
                </A>
            </p>
        </div>
    }
}
