//! `/admin/users`: find users; disable or enable, promote or demote, sign out everywhere, reset the
//! password or two-factor sign-in.

use super::{error_line, AdminFrame, AdminTable, SearchBox, BUTTON, DANGER_BUTTON, ROW};
use crate::admin::api::{
    admin_force_logout, admin_reset_password, admin_reset_two_factor, admin_set_disabled,
    admin_set_role, admin_users,
};
use crate::admin::AdminUserRow;
use crate::auth::authed;
use crate::components::form::Notice;
use crate::components::time::LocalTime;
use crate::error::AppError;
use crate::model::Role;
use leptos::prelude::*;

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    view! {
        <AdminFrame title="Users">
            <UsersTable />
        </AdminFrame>
    }
}

/// What the admin asked for on one row.
#[derive(Clone, Copy)]
enum UserAction {
    Disable(bool),
    SetRole(Role),
    ForceLogout,
    ResetPassword,
    ResetTwoFactor,
}

#[component]
fn UsersTable() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let offset = RwSignal::new(0u64);
    let version = RwSignal::new(0u32);
    let users = Resource::new(
        move || (search.get(), offset.get(), version.get()),
        |(search, offset, _)| authed(move || admin_users(search.clone(), offset)),
    );
    let error = RwSignal::new(None::<AppError>);
    let notice = RwSignal::new(None::<String>);

    let act = move |user: AdminUserRow, action: UserAction| {
        error.set(None);
        notice.set(None);
        leptos::task::spawn_local(async move {
            let id = user.id;
            let name = user.username.clone();
            let result = match action {
                UserAction::Disable(disabled) => authed(move || admin_set_disabled(id, disabled))
                    .await
                    .map(|_| format!("{name} is now {}.", if disabled { "disabled" } else { "enabled" })),
                UserAction::SetRole(role) => authed(move || admin_set_role(id, role))
                    .await
                    .map(|_| format!("{name} is now {}.", if role == Role::Admin { "an admin" } else { "a user" })),
                UserAction::ForceLogout => authed(move || admin_force_logout(id))
                    .await
                    .map(|n| format!("Signed {name} out of {n} session(s).")),
                UserAction::ResetPassword => authed(move || admin_reset_password(id))
                    .await
                    .map(|password| format!("Temporary password for {name}: {password} — give it to them privately; they must choose a new one when they sign in.")),
                UserAction::ResetTwoFactor => authed(move || admin_reset_two_factor(id))
                    .await
                    .map(|_| format!("Two-factor sign-in is off for {name}; they can sign in with their password and set it up again.")),
            };
            match result {
                Ok(message) => notice.set(Some(message)),
                Err(e) => error.set(Some(e)),
            }
            version.update(|v| *v += 1);
        });
    };

    view! {
        <SearchBox label="Search users" search offset />
        {error_line(error)}
        <Notice message=notice />
        <AdminTable
            label="Users"
            headers=&["User", "Role", "Status", "Two-factor", "Created", "Last seen", "Actions"]
            page=users
            offset
            row=move |u: AdminUserRow| view! { <UserRow user=u act /> }
        />
    }
}

#[component]
fn UserRow(
    user: AdminUserRow,
    act: impl Fn(AdminUserRow, UserAction) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let status = match (user.disabled, user.must_change_password) {
        (true, _) => "Disabled",
        (false, true) => "Must change password",
        (false, false) => "Active",
    };
    let (disabled, role, two_factor) = (user.disabled, user.role, user.two_factor);
    let row = StoredValue::new(user.clone());
    let on = move |action: UserAction| move |_| act(row.get_value(), action);
    view! {
        <tr class=ROW data-username=user.username.clone()>
            <td class="py-2 pr-3">
                <p class="font-medium">{user.display_name.clone()}</p>
                <p class="text-xs text-slate-600 dark:text-slate-400">"@"{user.username.clone()}</p>
            </td>
            <td class="py-2 pr-3">{user.role.as_str()}</td>
            <td class="py-2 pr-3" data-testid="status">{status}</td>
            <td class="py-2 pr-3" data-testid="two-factor">{if two_factor { "On" } else { "Off" }}</td>
            <td class="py-2 pr-3 whitespace-nowrap"><LocalTime at=user.created_at /></td>
            <td class="py-2 pr-3 whitespace-nowrap">{match user.last_seen_at { Some(t) => view! { <LocalTime at=t /> }.into_any(), None => "—".into_any() }}</td>
            <td class="py-2">
                <div class="flex flex-wrap gap-1">
                    {if disabled {
                        view! { <button type="button" class=BUTTON on:click=on(UserAction::Disable(false))>"Enable"</button> }.into_any()
                    } else {
                        view! { <button type="button" class=DANGER_BUTTON on:click=on(UserAction::Disable(true))>"Disable"</button> }.into_any()
                    }}
                    {if role == Role::Admin {
                        view! { <button type="button" class=BUTTON on:click=on(UserAction::SetRole(Role::User))>"Demote"</button> }.into_any()
                    } else {
                        view! { <button type="button" class=BUTTON on:click=on(UserAction::SetRole(Role::Admin))>"Promote"</button> }.into_any()
                    }}
                    <button type="button" class=BUTTON on:click=on(UserAction::ForceLogout)>"Sign out everywhere"</button>
                    <button type="button" class=BUTTON on:click=on(UserAction::ResetPassword)>"Reset password"</button>
                    {two_factor.then(|| view! {
                        <button type="button" class=DANGER_BUTTON on:click=on(UserAction::ResetTwoFactor)>"Reset two-factor"</button>
                    })}
                </div>
            </td>
        </tr>
    }
}
