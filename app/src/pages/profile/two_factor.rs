//! The profile page's "Two-factor sign-in" card: set up an authenticator app (QR code, key, a code to
//! confirm), see the recovery codes once, and turn it off again with the password and a code.

use crate::auth::api::{begin_two_factor, confirm_two_factor, disable_two_factor};
use crate::auth::{authed, TwoFactorSetup};
use crate::components::form::{field_error, Card, FormError, Notice, SubmitButton, TextField};
use crate::domain::PASSWORD_MAX;
use crate::error::AppError;
use leptos::prelude::*;

/// Where the card is: off, setting up (QR shown), or on (with the recovery codes shown right after
/// turning it on, and never again).
#[derive(Clone, PartialEq)]
enum Stage {
    Off,
    SettingUp(TwoFactorSetup),
    On { fresh_codes: Option<Vec<String>> },
}

#[component]
pub fn TwoFactorCard(enabled: bool) -> impl IntoView {
    let stage = RwSignal::new(if enabled {
        Stage::On { fresh_codes: None }
    } else {
        Stage::Off
    });
    let notice = RwSignal::new(None::<String>);
    view! {
        <Card title="Two-factor sign-in" region=true>
            <div class="space-y-4">
                <Notice message=notice />
                {move || match stage.get() {
                    Stage::Off => view! { <Start stage notice /> }.into_any(),
                    Stage::SettingUp(setup) => view! { <Confirm setup stage notice /> }.into_any(),
                    Stage::On { fresh_codes } => {
                        view! {
                            {fresh_codes.map(|codes| view! { <RecoveryCodes codes /> })}
                            <Disable stage notice />
                        }
                            .into_any()
                    }
                }}
            </div>
        </Card>
    }
}

#[component]
fn Start(stage: RwSignal<Stage>, notice: RwSignal<Option<String>>) -> impl IntoView {
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let start = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match authed(begin_two_factor).await {
                Ok(setup) => stage.set(Stage::SettingUp(setup)),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <p class="text-sm text-slate-600 dark:text-slate-300">
            "Two-factor sign-in is off. Turn it on and signing in will also ask for a code from an authenticator app on your phone, so a stolen password alone is not enough."
        </p>
        <FormError error />
        <button
            type="button"
            on:click=start
            disabled=move || busy.get()
            class="inline-flex justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500/50 disabled:opacity-60"
        >
            {move || if busy.get() { "Preparing…" } else { "Set up two-factor sign-in" }}
        </button>
    }
}

#[component]
fn Confirm(
    setup: TwoFactorSetup,
    stage: RwSignal<Stage>,
    notice: RwSignal<Option<String>>,
) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let entered = code.get_untracked();
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match authed(move || confirm_two_factor(entered.clone())).await {
                Ok(codes) => {
                    notice.set(Some("Two-factor sign-in is on.".to_owned()));
                    stage.set(Stage::On {
                        fresh_codes: Some(codes),
                    });
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <ol class="list-decimal space-y-1 pl-5 text-sm text-slate-700 dark:text-slate-200">
            <li>"Scan this QR code with an authenticator app (or type the key below into it)."</li>
            <li>"Enter the 6-digit code the app shows to finish."</li>
        </ol>
        // The SVG is drawn by the server from the key above; it carries no script.
        <div
            role="img"
            aria-label="QR code for your authenticator app"
            class="w-fit rounded-md bg-white p-2"
            inner_html=setup.qr_svg
        ></div>
        <p class="text-sm text-slate-700 dark:text-slate-200">
            "Key: "
            <code data-testid="two-factor-key" class="select-all break-all font-mono">
                {setup.key}
            </code>
        </p>
        <form on:submit=on_submit class="space-y-4" novalidate>
            <FormError error />
            <TextField
                label="Code from your app"
                name="code"
                value=code
                error=field_error(error, "code")
                autocomplete="one-time-code"
                maxlength=6
            />
            <div class="flex flex-wrap items-center gap-3">
                <SubmitButton label="Turn on" busy_label="Checking…" busy />
                <button
                    type="button"
                    class="text-sm text-slate-700 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 dark:text-slate-300"
                    on:click=move |_| stage.set(Stage::Off)
                >
                    "Cancel"
                </button>
            </div>
        </form>
    }
}

/// The recovery codes, right after turning two-factor sign-in on: the only time they are shown.
#[component]
fn RecoveryCodes(codes: Vec<String>) -> impl IntoView {
    let hidden = RwSignal::new(false);
    view! {
        <Show when=move || !hidden.get()>
            <section
                aria-labelledby="recovery-codes-heading"
                class="space-y-3 rounded-md border border-amber-200 bg-amber-50 p-4 text-amber-950 dark:border-amber-900 dark:bg-amber-950 dark:text-amber-100"
            >
                <h3 id="recovery-codes-heading" class="font-semibold">
                    "Save your recovery codes"
                </h3>
                <p class="text-sm">
                    "If you lose your phone, each of these codes signs you in once instead of a code from the app. They are shown only now: store them somewhere safe."
                </p>
                <ul data-testid="recovery-codes" class="grid grid-cols-2 gap-1 font-mono text-sm">
                    {codes.clone().into_iter().map(|c| view! { <li class="select-all">{c}</li> }).collect_view()}
                </ul>
                <button
                    type="button"
                    class="rounded-md border border-amber-300 px-3 py-1 text-sm font-medium hover:bg-amber-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 dark:border-amber-800 dark:hover:bg-amber-900"
                    on:click=move |_| hidden.set(true)
                >
                    "I have saved them"
                </button>
            </section>
        </Show>
    }
}

#[component]
fn Disable(stage: RwSignal<Stage>, notice: RwSignal<Option<String>>) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (pass, entered) = (password.get_untracked(), code.get_untracked());
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match authed(move || disable_two_factor(pass.clone(), entered.clone())).await {
                Ok(()) => {
                    notice.set(Some("Two-factor sign-in is off.".to_owned()));
                    stage.set(Stage::Off);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <p class="text-sm text-slate-600 dark:text-slate-300">
            "Two-factor sign-in is on: signing in asks for a code from your authenticator app."
        </p>
        <form on:submit=on_submit class="space-y-4" novalidate>
            <FormError error />
            <TextField
                label="Current password"
                name="password"
                kind="password"
                value=password
                error=field_error(error, "password")
                autocomplete="current-password"
                maxlength=PASSWORD_MAX
            />
            <TextField
                label="Code from your app or a recovery code"
                name="code"
                value=code
                error=field_error(error, "code")
                autocomplete="one-time-code"
                maxlength=32
            />
            <SubmitButton label="Turn off two-factor sign-in" busy_label="Turning off…" busy />
        </form>
    }
}
