//! `/register`: create an account and land in the app, signed in.

use crate::auth::api::{register, Register};
use crate::components::form::{field_error, refused_form_post, FormError, SubmitButton, TextField};
use crate::domain::{
    check_password_length, DisplayName, Username, DISPLAY_NAME_MAX, PASSWORD_MAX, USERNAME_MAX,
};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn RegisterPage() -> impl IntoView {
    let username = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let error = RwSignal::new(refused_form_post(<Register as ServerFn>::PATH));
    let busy = RwSignal::new(false);

    // Quick checks in the browser save a round trip; the server checks everything again.
    let check = move || -> Result<(), AppError> {
        let name = Username::parse(&username.get_untracked())?;
        DisplayName::parse(&display_name.get_untracked(), &name)?;
        check_password_length("password", &password.get_untracked())?;
        if password.get_untracked() != confirm.get_untracked() {
            return Err(AppError::invalid("confirm", "The passwords do not match."));
        }
        Ok(())
    };

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        if let Err(e) = check() {
            error.set(Some(e));
            return;
        }
        busy.set(true);
        error.set(None);
        let (u, d, p) = (
            username.get_untracked(),
            display_name.get_untracked(),
            password.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            match register(u, d, p).await {
                Ok(_) => {
                    let _ = window().location().assign("/");
                }
                Err(e) => {
                    error.set(Some(e));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <Title text="Create an account" />
        <div class="mx-auto w-full max-w-sm px-4 py-10">
            <h1 class="mb-6 text-2xl font-semibold tracking-tight">"Create an account"</h1>
            <form method="post" action="/api/auth/register" on:submit=on_submit class="space-y-4" novalidate>
                <FormError error />
                <TextField
                    label="Username"
                    name="username"
                    value=username
                    error=field_error(error, "username")
                    autocomplete="username"
                    maxlength=USERNAME_MAX
                    hint="3 to 32 letters, digits, _ or -. This is how people find you."
                />
                <TextField
                    label="Display name"
                    name="display_name"
                    value=display_name
                    error=field_error(error, "display_name")
                    autocomplete="name"
                    maxlength=DISPLAY_NAME_MAX
                    hint="Optional. Shown next to your messages."
                />
                <TextField
                    label="Password"
                    name="password"
                    kind="password"
                    value=password
                    error=field_error(error, "password")
                    autocomplete="new-password"
                    maxlength=PASSWORD_MAX
                    hint="At least 8 characters. A few unrelated words make a strong password."
                />
                <TextField
                    label="Confirm password"
                    name="confirm"
                    kind="password"
                    value=confirm
                    error=field_error(error, "confirm")
                    autocomplete="new-password"
                    maxlength=PASSWORD_MAX
                />
                <SubmitButton label="Create account" busy_label="Creating…" busy />
            </form>
            <p class="mt-6 text-sm text-slate-600 dark:text-slate-400">
                "Already have an account? "
                <A href="/login" attr:class="font-medium text-indigo-600 hover:underline dark:text-indigo-400">
                    "Sign in"
                </A>
            </p>
        </div>
    }
}
