//! `/profile`: change the display name, the picture and the password, turn two-factor sign-in on or
//! off, and notifications on this device.

mod notifications;
mod picture;
mod two_factor;

use crate::auth::api::{change_password, get_current_user, update_profile};
use crate::auth::{authed, CurrentUser, UserContext};
use crate::components::form::{field_error, Card, FormError, Notice, SubmitButton, TextField};
use crate::domain::{check_password_length, DISPLAY_NAME_MAX, PASSWORD_MAX};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ProfilePage() -> impl IntoView {
    // Its own copy of the user: refreshing the shared one after a save must not rebuild these forms.
    let user = Resource::new(|| (), |_| authed(get_current_user));
    view! {
        <Title text="Profile" />
        <div class="mx-auto w-full max-w-xl space-y-6 px-4 py-8">
            <h1 class="text-2xl font-semibold tracking-tight">"Profile"</h1>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(me)) => view! { <ProfileForms me /> }.into_any(),
                        _ => view! { <p>"Please sign in to see your profile."</p> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn ProfileForms(me: CurrentUser) -> impl IntoView {
    let user = UserContext::get().0;
    view! {
        <p class="text-sm text-slate-600 dark:text-slate-400">
            "Signed in as " <span class="font-medium text-slate-900 dark:text-slate-100">{me.username.clone()}</span>
            {(me.role == crate::model::Role::Admin).then_some(" (administrator)")}
        </p>
        {me.must_change_password.then(|| view! {
            <p role="alert" class="rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900 dark:border-amber-900 dark:bg-amber-950 dark:text-amber-200">
                "An administrator reset your password. Please choose a new one."
            </p>
        })}
        <DisplayNameForm current=me.display_name.clone() on_saved=move || user.refetch() />
        <picture::PictureCard user=me.id name=me.display_name.clone() current=me.avatar />
        <PasswordForm />
        <two_factor::TwoFactorCard enabled=me.two_factor />
        <notifications::NotificationsCard />
    }
}

#[component]
fn DisplayNameForm(
    current: String,
    on_saved: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let display_name = RwSignal::new(current);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let saved = RwSignal::new(None::<String>);

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        saved.set(None);
        let name = display_name.get_untracked();
        leptos::task::spawn_local(async move {
            match authed(move || update_profile(name.clone())).await {
                Ok(me) => {
                    display_name.set(me.display_name);
                    saved.set(Some("Display name saved.".to_owned()));
                    on_saved();
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <Card title="Display name">
            <form on:submit=on_submit class="space-y-4" novalidate>
                <FormError error />
                <Notice message=saved />
                <TextField
                    label="Display name"
                    name="display_name"
                    value=display_name
                    error=field_error(error, "display_name")
                    autocomplete="name"
                    maxlength=DISPLAY_NAME_MAX
                />
                <SubmitButton label="Save" busy_label="Saving…" busy />
            </form>
        </Card>
    }
}

#[component]
fn PasswordForm() -> impl IntoView {
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let done = RwSignal::new(None::<String>);

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (old, fresh) = (current.get_untracked(), new.get_untracked());
        let local = check_password_length("new_password", &fresh).and_then(|()| {
            if fresh == confirm.get_untracked() {
                Ok(())
            } else {
                Err(AppError::invalid(
                    "confirm_password",
                    "The passwords do not match.",
                ))
            }
        });
        if let Err(e) = local {
            error.set(Some(e));
            return;
        }
        busy.set(true);
        error.set(None);
        done.set(None);
        leptos::task::spawn_local(async move {
            match authed(move || change_password(old.clone(), fresh.clone())).await {
                Ok(others) => {
                    current.set(String::new());
                    new.set(String::new());
                    confirm.set(String::new());
                    done.set(Some(match others {
                        0 => "Password changed.".to_owned(),
                        1 => "Password changed. 1 other session was signed out.".to_owned(),
                        n => format!("Password changed. {n} other sessions were signed out."),
                    }));
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <Card title="Password">
            <form on:submit=on_submit class="space-y-4" novalidate>
                <FormError error />
                <Notice message=done />
                <TextField
                    label="Current password"
                    name="current_password"
                    kind="password"
                    value=current
                    error=field_error(error, "current_password")
                    autocomplete="current-password"
                    maxlength=PASSWORD_MAX
                />
                <TextField
                    label="New password"
                    name="new_password"
                    kind="password"
                    value=new
                    error=field_error(error, "new_password")
                    autocomplete="new-password"
                    maxlength=PASSWORD_MAX
                    hint="Changing it signs out your other sessions."
                />
                <TextField
                    label="Confirm new password"
                    name="confirm_password"
                    kind="password"
                    value=confirm
                    error=field_error(error, "confirm_password")
                    autocomplete="new-password"
                    maxlength=PASSWORD_MAX
                />
                <SubmitButton label="Change password" busy_label="Changing…" busy />
            </form>
        </Card>
    }
}
