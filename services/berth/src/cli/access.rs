//! `berth access`, `berth tokens` and `berth admin`: collaborators, the caller's API tokens, and the
//! operators' accounts, apps and audit log.

use anyhow::bail;
use api_contract::access::{
    AccessList, AdminAccount, AdminApp, AdminDone, AuditEntryInfo, CollaboratorAdd, CollaboratorInfo, Quotas,
    TokenCreate, TokenCreated, TokenListing,
};
use api_contract::{AccountCreate, AccountCreated, LifecycleInfo};
use clap::Subcommand;
use reqwest::Method;

use super::client::Client;
use super::logs::encode_query as encode;
use super::output::{header, memory, table};

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Let another account deploy, scale, configure and read the app (owner only).
    Add { account: String },
    /// Take an account's access away (owner only).
    Remove { account: String },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; prints it alone on the last line. --read-only: it may only read (GET), never change
    /// anything or push.
    Create {
        #[arg(long)]
        read_only: bool,
    },
    /// Revoke a token by its id from `berth tokens` (or a unique prefix of at least 6 digits).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List accounts with their usage and limits, or create, suspend, unsuspend, delete one or set its quotas.
    Accounts {
        #[command(subcommand)]
        command: Option<AdminAccountsCommand>,
    },
    /// List every account's apps (--search TEXT matches app and owner names), or stop one.
    Apps {
        #[arg(long)]
        search: Option<String>,
        #[command(subcommand)]
        command: Option<AdminAppsCommand>,
    },
    /// Recorded changes, newest first.
    Audit {
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
        /// How many (default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminAccountsCommand {
    /// Create an account; prints its API token alone on the last line.
    Create { name: String },
    /// Refuse the account's tokens and stop its apps.
    Suspend { name: String },
    /// Accept the account's tokens again (its apps stay stopped until started).
    Unsuspend { name: String },
    /// Delete an account that owns no apps.
    Delete { name: String },
    /// Set the account's own limits; the others stay as they are. --reset returns all to the defaults.
    Quotas {
        name: String,
        #[arg(long)]
        apps: Option<u64>,
        #[arg(long)]
        instances: Option<u64>,
        /// Memory of all its instances together: `8G`, `512M`.
        #[arg(long, value_parser = super::run::parse_size)]
        memory: Option<u64>,
        #[arg(long)]
        builds: Option<u64>,
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminAppsCommand {
    /// Stop an app of any account (its formation is kept).
    Stop { name: String },
}

/// `berth access [add|remove] -a NAME`
pub async fn access(
    client: &Client,
    app: &vocabulary::AppName,
    command: Option<AccessCommand>,
) -> anyhow::Result<()> {
    let path = format!("/v1/apps/{app}/collaborators");
    match command {
        None => {
            let list: AccessList = client.get(&path).await?;
            print!("{}", access_list(&list));
        }
        Some(AccessCommand::Add { account }) => {
            let added: CollaboratorInfo = client
                .send(Method::POST, &path, &CollaboratorAdd { account })
                .await?;
            println!("{} may now deploy {app}.", added.account);
        }
        Some(AccessCommand::Remove { account }) => {
            let account = vocabulary::AccountName::new(&account)?;
            client.delete(&format!("{path}/{account}")).await?;
            println!("{account} no longer has access to {app}.");
        }
    }
    Ok(())
}

/// `berth tokens [create|revoke]`
pub async fn tokens(client: &Client, command: Option<TokensCommand>) -> anyhow::Result<()> {
    match command {
        None => {
            let tokens: Vec<TokenListing> = client.get("/v1/tokens").await?;
            print!("{}", token_list(&tokens));
        }
        Some(TokensCommand::Create { read_only }) => {
            let scope = (if read_only { "read" } else { "full" }).to_owned();
            let created: TokenCreated = client
                .send(Method::POST, "/v1/tokens", &TokenCreate { scope: Some(scope) })
                .await?;
            println!(
                "Created token {} ({} scope). Shown only this once:",
                created.id, created.scope
            );
            println!("{}", created.token);
        }
        Some(TokensCommand::Revoke { id }) => {
            if !id.bytes().all(|b| b.is_ascii_hexdigit()) || id.is_empty() {
                bail!("{id:?} is not a token id: `berth tokens` lists them");
            }
            client
                .delete(&format!("/v1/tokens/{}", id.to_ascii_lowercase()))
                .await?;
            println!("Revoked token {id}.");
        }
    }
    Ok(())
}

/// `berth admin ...`
pub async fn admin(client: &Client, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Accounts { command } => admin_accounts(client, command).await,
        AdminCommand::Apps { search, command } => match command {
            None => {
                let query = search.map(|q| format!("?q={}", encode(&q))).unwrap_or_default();
                let apps: Vec<AdminApp> = client.get(&format!("/v1/admin/apps{query}")).await?;
                print!("{}", admin_apps(&apps));
                Ok(())
            }
            Some(AdminAppsCommand::Stop { name }) => {
                let name = vocabulary::AppName::new(&name)?;
                let done: LifecycleInfo = client
                    .send(Method::POST, &format!("/v1/admin/apps/{name}/stop"), &())
                    .await?;
                println!("{}", done.message);
                Ok(())
            }
        },
        AdminCommand::Audit { account, limit } => {
            let mut query = Vec::new();
            if let Some(account) = account {
                query.push(format!("account={}", encode(&account)));
            }
            if let Some(limit) = limit {
                query.push(format!("limit={limit}"));
            }
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let entries: Vec<AuditEntryInfo> = client.get(&format!("/v1/admin/audit{query}")).await?;
            print!("{}", audit(&entries));
            Ok(())
        }
    }
}

async fn admin_accounts(client: &Client, command: Option<AdminAccountsCommand>) -> anyhow::Result<()> {
    let account_path = |name: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/v1/admin/accounts/{}",
            vocabulary::AccountName::new(name)?
        ))
    };
    match command {
        None => {
            let accounts: Vec<AdminAccount> = client.get("/v1/admin/accounts").await?;
            print!("{}", admin_account_list(&accounts));
        }
        Some(AdminAccountsCommand::Create { name }) => {
            let created: AccountCreated = client
                .send(Method::POST, "/v1/admin/accounts", &AccountCreate { name })
                .await?;
            println!(
                "Created account {}. Its API token, shown only this once:",
                created.name
            );
            println!("{}", created.token);
        }
        Some(AdminAccountsCommand::Suspend { name }) => {
            let done: AdminDone = client
                .send(Method::POST, &format!("{}/suspend", account_path(&name)?), &())
                .await?;
            println!("{}", done.message);
        }
        Some(AdminAccountsCommand::Unsuspend { name }) => {
            let done: AdminDone = client
                .send(Method::POST, &format!("{}/unsuspend", account_path(&name)?), &())
                .await?;
            println!("{}", done.message);
        }
        Some(AdminAccountsCommand::Delete { name }) => {
            client.delete(&account_path(&name)?).await?;
            println!("Deleted account {name}.");
        }
        Some(AdminAccountsCommand::Quotas {
            name,
            apps,
            instances,
            memory,
            builds,
            reset,
        }) => {
            let mut quotas = if reset {
                Quotas::default()
            } else {
                let accounts: Vec<AdminAccount> = client.get("/v1/admin/accounts").await?;
                match accounts.into_iter().find(|a| a.name.as_str() == name) {
                    Some(account) => account.overrides,
                    None => bail!("no account {name:?}"),
                }
            };
            quotas.apps = apps.or(quotas.apps);
            quotas.instances = instances.or(quotas.instances);
            quotas.memory_bytes = memory.map(|mib| mib << 20).or(quotas.memory_bytes);
            quotas.builds = builds.or(quotas.builds);
            let account: AdminAccount = client
                .send(Method::PUT, &format!("{}/quotas", account_path(&name)?), &quotas)
                .await?;
            print!("{}", admin_account_list(std::slice::from_ref(&account)));
        }
    }
    Ok(())
}

fn access_list(list: &AccessList) -> String {
    let mut rows = vec![header(&["ACCOUNT", "ROLE", "ADDED BY", "ADDED"])];
    rows.push(vec![
        list.owner.to_string(),
        "owner".into(),
        "-".into(),
        "-".into(),
    ]);
    for c in &list.collaborators {
        rows.push(vec![
            c.account.to_string(),
            "collaborator".into(),
            c.added_by.clone(),
            c.added_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    table(&rows)
}

fn token_list(tokens: &[TokenListing]) -> String {
    let mut rows = vec![header(&["ID", "SCOPE", "CREATED", "LAST USED"])];
    for t in tokens {
        rows.push(vec![
            t.id.clone(),
            t.scope.clone(),
            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
            t.last_used_at.map_or_else(
                || "never".to_owned(),
                |at| at.format("%Y-%m-%d %H:%M").to_string(),
            ),
        ]);
    }
    table(&rows)
}

fn admin_account_list(accounts: &[AdminAccount]) -> String {
    let mut rows = vec![header(&[
        "NAME",
        "STATE",
        "APPS",
        "INSTANCES",
        "MEMORY",
        "BUILDS",
    ])];
    for a in accounts {
        let state = match (a.suspended, a.is_admin) {
            (true, _) => "suspended",
            (false, true) => "admin",
            (false, false) => "active",
        };
        rows.push(vec![
            a.name.to_string(),
            state.to_owned(),
            format!("{}/{}", a.usage.apps, a.limits.apps),
            format!("{}/{}", a.usage.instances, a.limits.instances),
            format!(
                "{}/{}",
                memory(a.usage.memory_bytes),
                memory(a.limits.memory_bytes)
            ),
            format!("{}/{}", a.usage.builds, a.limits.builds),
        ]);
    }
    table(&rows)
}

fn admin_apps(apps: &[AdminApp]) -> String {
    let mut rows = vec![header(&["NAME", "OWNER", "STATE", "CREATED"])];
    for a in apps {
        rows.push(vec![
            a.name.to_string(),
            a.owner.to_string(),
            (if a.stopped { "stopped" } else { "running" }).to_owned(),
            a.created_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    table(&rows)
}

fn audit(entries: &[AuditEntryInfo]) -> String {
    let mut rows = vec![header(&[
        "WHEN", "ACCOUNT", "SCOPE", "ACTION", "TARGET", "STATUS",
    ])];
    for e in entries {
        rows.push(vec![
            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            e.account.clone(),
            e.token_scope.clone(),
            e.action.clone(),
            e.target.clone().unwrap_or_else(|| "-".to_owned()),
            e.status.to_string(),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_rows_show_use_against_limits() {
        let account: AdminAccount = serde_json::from_value(serde_json::json!({
            "name": "dev", "is_admin": false, "suspended": true, "created_at": "2026-01-01T00:00:00Z",
            "usage": {"apps": 1, "instances": 2, "memory_bytes": 536870912u64, "builds": 0},
            "limits": {"apps": 20, "instances": 50, "memory_bytes": 17179869184u64, "builds": 2},
            "overrides": {}
        }))
        .unwrap();
        assert_eq!(
            admin_account_list(&[account]),
            "NAME  STATE      APPS  INSTANCES  MEMORY    BUILDS\n\
             dev   suspended  1/20  2/50       512M/16G  0/2\n"
        );
    }
}
