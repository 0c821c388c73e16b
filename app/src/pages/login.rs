//! `/login`: sign in, then go back to where the person was headed (`?next=`). An account with
//! two-factor sign-in gets a second step that asks for a code from its authenticator app, or one of
//! its recovery codes.

use crate::auth::{
    api::{login, login_with_code, Login},
    paths::safe_next,
};
use crate::components::form::{
    field_error, keep_typed, refused_form_post, FormError, SubmitButton, TextField,
};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
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
    let error = RwSignal::new(refused_form_post(<Login as ServerFn>::PATH));
    let busy = RwSignal::new(false);
    // Set once the password was right and the account asks for a code.
    let code_step = RwSignal::new(false);

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
                Err(AppError::SecondFactorRequired) => {
                    password.set(String::new());
                    code_step.set(true);
                    busy.set(false);
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
            <Show when=move || code_step.get()>
                <CodeStep next on_back=move || code_step.set(false) />
            </Show>
            <form
                method="post"
                action="/api/auth/login"
                on:submit=on_submit
                class="space-y-4"
                class:hidden=move || code_step.get()
                novalidate
            >
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

/// The second step: the current code from the authenticator app, or a recovery code.
#[component]
fn CodeStep(
    next: Memo<String>,
    on_back: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let recovery = RwSignal::new(false);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();
    keep_typed(input, code);
    // Focus the field when the step (or the kind of code) changes, so the person can type at once.
    Effect::new(move |_| {
        recovery.track();
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let entered = code.get_untracked();
        if entered.trim().is_empty() {
            error.set(Some(AppError::invalid("code", "Enter the code.")));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match login_with_code(entered).await {
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
    let label = move || {
        if recovery.get() {
            "Recovery code"
        } else {
            "Authentication code"
        }
    };
    let error_text = field_error(error, "code");

    view! {
        <form on:submit=on_submit class="space-y-4" novalidate>
            <p class="text-sm text-slate-600 dark:text-slate-300">
                {move || {
                    if recovery.get() {
                        "Enter one of the recovery codes you saved when you set up two-factor sign-in. Each works once."
                    } else {
                        "Open your authenticator app and enter the 6-digit code it shows for ML-CHAT."
                    }
                }}
            </p>
            <FormError error />
            <div class="space-y-1">
                <label for="field-code" class="block text-sm font-medium text-slate-700 dark:text-slate-200">
                    {label}
                </label>
                <input
                    id="field-code"
                    name="code"
                    node_ref=input
                    type="text"
                    autocomplete="one-time-code"
                    inputmode=move || if recovery.get() { "text" } else { "numeric" }
                    maxlength="32"
                    spellcheck="false"
                    value=code.get_untracked()
                    on:input:target=move |ev| code.set(ev.target().value())
                    aria-invalid=move || error_text.get().is_some().to_string()
                    aria-describedby=move || error_text.get().map(|_| "field-code-error")
                    class="block w-full rounded-md border border-slate-300 bg-white px-3 py-2 font-mono text-sm tracking-widest shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500/40 aria-[invalid=true]:border-red-500 dark:border-slate-700 dark:bg-slate-900"
                />
                {move || {
                    error_text
                        .get()
                        .map(|message| {
                            view! {
                                <p id="field-code-error" class="text-sm text-red-600 dark:text-red-400">
                                    {message}
                                </p>
                            }
                        })
                }}
            </div>
            <div class="flex flex-wrap items-center gap-3">
                <SubmitButton label="Verify" busy_label="Checking…" busy />
                <button
                    type="button"
                    class="text-sm font-medium text-indigo-700 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 dark:text-indigo-300"
                    on:click=move |_| {
                        recovery.update(|r| *r = !*r);
                        code.set(String::new());
                        error.set(None);
                    }
                >
                    {move || {
                        if recovery.get() {
                            "Use the code from your app instead"
                        } else {
                            "Use a recovery code instead"
                        }
                    }}
                </button>
                <button
                    type="button"
                    class="text-sm text-slate-700 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 dark:text-slate-300"
                    on:click=move |_| on_back()
                >
                    "Back"
                </button>
            </div>
        </form>
    }
}
