//! The route table as a pure function of the store's rows, so what routers get is table-tested.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use route_table::{AppRoute, Backend, Certificate, RouteTable};
use store::{App, Domain, Instance, InstanceRowState, RouterSettings, StoredCertificate};
use vocabulary::AppId;

/// Everything the route table is made from.
pub struct RouteInputs<'a> {
    /// The platform's domain: every app is served at `NAME.DOMAIN`.
    pub domain: &'a str,
    pub apps: &'a [App],
    /// Apps' router settings; an app missing here gets the defaults.
    pub settings: &'a HashMap<AppId, RouterSettings>,
    pub domains: &'a [Domain],
    pub instances: &'a [Instance],
    /// Apps' uploaded certificates, newest first (so a renewed one wins over the old one for the same name).
    pub certificates: &'a [StoredCertificate],
    /// The platform's own certificate for `*.DOMAIN` and `DOMAIN`.
    pub platform_certificate: Option<&'a Certificate>,
    /// When the table is made: apps' certificates that have expired by then are left out.
    pub now: DateTime<Utc>,
}

/// Whether `certificate` has expired at `now`. X.509's notAfter is the last instant it is valid, so it is
/// still served at exactly `not_after`. The API refuses expired uploads; this catches the ones that expire
/// later, which must leave the table so SNI falls back to the platform wildcard (or to no certificate).
pub fn certificate_expired(certificate: &StoredCertificate, now: DateTime<Utc>) -> bool {
    certificate.not_after < now
}

/// The earliest moment after `now` at which one of `certificates` expires: when the table must be built again.
pub fn next_certificate_expiry(
    certificates: &[StoredCertificate],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    certificates
        .iter()
        .filter(|c| !certificate_expired(c, now))
        .map(|c| c.not_after)
        .min()
}

/// The table for `inputs` (version 0: the publisher numbers it). Every app gets its platform host and its custom
/// domains, even with nothing running (the router answers 503 rather than 404); its backends are its running
/// `web` instances that are not being stopped, sorted so equal worlds make equal tables. An app's certificate
/// is served only while every name on it is still one of the app's domains (a domain given up, and perhaps
/// taken by another tenant, takes its old certificates out of the table) and until it expires.
pub fn build_table(inputs: &RouteInputs<'_>) -> RouteTable {
    let mut table = RouteTable::default();
    let mut names = HashMap::new();
    for app in inputs.apps {
        let name = app.name.to_string();
        table.insert_host(&format!("{name}.{}", inputs.domain), &name);
        let settings = inputs.settings.get(&app.id).copied().unwrap_or_default();
        table.insert_app(
            &name,
            AppRoute {
                backends: Vec::new(),
                redirect_https: settings.redirect_https,
                first_byte_timeout_ms: settings.first_byte_timeout_secs.map(|s| u64::from(s) * 1000),
            },
        );
        names.insert(app.id, name);
    }
    for domain in inputs.domains {
        if let Some(name) = names.get(&domain.app) {
            table.insert_host(domain.name.as_str(), name);
        }
    }
    for instance in inputs.instances {
        let serving = instance.process_type.is_web()
            && !instance.stop_requested
            && instance.state == InstanceRowState::Running;
        let (true, Some(addr), Some(name)) = (serving, instance.address, names.get(&instance.app)) else {
            continue;
        };
        if let Some(route) = table.apps.get_mut(name) {
            route.backends.push(Backend {
                addr,
                instance: format!("{}.{}", instance.process_type, instance.index),
            });
        }
    }
    for route in table.apps.values_mut() {
        route.backends.sort();
    }
    table.certificates.extend(inputs.platform_certificate.cloned());
    for certificate in inputs
        .certificates
        .iter()
        .filter(|c| !certificate_expired(c, inputs.now))
    {
        let still_owned = certificate.hosts.iter().all(|host| {
            inputs
                .domains
                .iter()
                .any(|d| d.app == certificate.app && d.name.covers(host))
        });
        if still_owned {
            table.certificates.push(Certificate {
                hosts: certificate.hosts.clone(),
                cert_pem: certificate.cert_pem.clone(),
                key_pem: certificate.key_pem.clone(),
            });
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};
    use vocabulary::{AccountId, AppName, DomainName, InstanceId, NodeId, ProcessType, ReleaseId};

    use super::*;

    fn app(name: &str) -> App {
        App {
            id: AppId::new(),
            name: AppName::new(name).unwrap(),
            owner: AccountId::new(),
            created_at: Utc::now(),
        }
    }

    fn domain(app: &App, name: &str) -> Domain {
        Domain {
            name: DomainName::new(name).unwrap(),
            app: app.id,
            created_at: Utc::now(),
        }
    }

    fn instance(app: &App, kind: &str, index: u32, state: InstanceRowState, stopping: bool) -> Instance {
        Instance {
            id: InstanceId::new(),
            app: app.id,
            release: ReleaseId::new(),
            process_type: ProcessType::new(kind).unwrap(),
            index,
            node: NodeId::new(),
            memory_bytes: 1 << 20,
            state,
            stop_requested: stopping,
            replace_requested: false,
            address: Some(format!("10.0.0.{}:5000", index + 10).parse().unwrap()),
            hostname: None,
            restarts: 0,
            last_exit: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn hosts_domains_and_backends() {
        use InstanceRowState::*;
        let shop = app("shop");
        let blog = app("blog");
        let gone = app("gone");
        let domains = [
            domain(&shop, "shop.example.com"),
            domain(&shop, "*.shop.example.com"),
            domain(&blog, "blog.example.org"),
            // The app was deleted since the rows were read: no host for it.
            domain(&gone, "gone.example.org"),
        ];
        let instances = [
            instance(&shop, "web", 2, Running, false),
            instance(&shop, "web", 1, Running, false),
            instance(&shop, "web", 3, Running, true),
            instance(&shop, "web", 4, Starting, false),
            instance(&shop, "worker", 5, Running, false),
            instance(&blog, "web", 1, Crashed, false),
        ];
        let table = build_table(&RouteInputs {
            domain: "apps.test",
            apps: &[shop.clone(), blog.clone()],
            settings: &HashMap::from([(
                shop.id,
                RouterSettings {
                    redirect_https: true,
                    first_byte_timeout_secs: Some(90),
                },
            )]),
            domains: &domains,
            instances: &instances,
            certificates: &[],
            platform_certificate: None,
            now: Utc::now(),
        });
        let cases = [
            ("shop.apps.test", Some("shop")),
            ("shop.example.com", Some("shop")),
            ("www.shop.example.com", Some("shop")),
            ("blog.apps.test", Some("blog")),
            ("blog.example.org", Some("blog")),
            ("gone.example.org", None),
            ("gone.apps.test", None),
        ];
        for (host, want) in cases {
            assert_eq!(table.lookup(host).map(|(app, _)| app), want, "{host}");
        }
        let backends: Vec<&str> = table.apps["shop"]
            .backends
            .iter()
            .map(|b| b.instance.as_str())
            .collect();
        assert_eq!(backends, ["web.1", "web.2"]);
        assert!(table.apps["blog"].backends.is_empty());
        assert!(table.apps["shop"].redirect_https);
        assert_eq!(table.apps["shop"].first_byte_timeout_ms, Some(90_000));
        assert!(!table.apps["blog"].redirect_https);
        assert_eq!(table.apps["blog"].first_byte_timeout_ms, None);
        assert_eq!(table.hosts.len(), 5);
        assert!(table.certificates.is_empty());
    }

    fn certificate(app: &App, hosts: &[&str], tag: &str) -> StoredCertificate {
        StoredCertificate {
            id: vocabulary::CertificateId::new(),
            app: app.id,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            cert_pem: tag.to_owned(),
            key_pem: format!("{tag} key"),
            not_after: Utc::now() + TimeDelta::days(30),
            created_at: Utc::now(),
        }
    }

    fn expiring(app: &App, hosts: &[&str], tag: &str, not_after: DateTime<Utc>) -> StoredCertificate {
        StoredCertificate {
            not_after,
            ..certificate(app, hosts, tag)
        }
    }

    #[test]
    fn certificates_expire_after_their_not_after() {
        let shop = app("shop");
        let now = Utc::now();
        let second = TimeDelta::seconds(1);
        let cases = [
            (now - TimeDelta::days(1), true),
            (now - second, true),
            (now - TimeDelta::microseconds(1), true),
            // notAfter is the last valid instant.
            (now, false),
            (now + second, false),
            (now + TimeDelta::days(90), false),
        ];
        for (not_after, want) in cases {
            let c = expiring(&shop, &["shop.example.com"], "c", not_after);
            assert_eq!(
                certificate_expired(&c, now),
                want,
                "not_after {not_after} at {now}"
            );
        }

        let certificates = [
            expiring(&shop, &["a.example.com"], "gone", now - second),
            expiring(&shop, &["b.example.com"], "later", now + TimeDelta::days(60)),
            expiring(&shop, &["c.example.com"], "soon", now + second),
        ];
        assert_eq!(next_certificate_expiry(&certificates, now), Some(now + second));
        assert_eq!(next_certificate_expiry(&certificates[..1], now), None);
        assert_eq!(next_certificate_expiry(&[], now), None);
    }

    #[test]
    fn an_expired_certificate_leaves_the_table_and_the_wildcard_serves_instead() {
        let shop = app("shop");
        let now = Utc::now();
        let domains = [
            domain(&shop, "shop.example.com"),
            domain(&shop, "*.apps.example.com"),
        ];
        let certificates = [
            expiring(
                &shop,
                &["shop.example.com"],
                "expired",
                now - TimeDelta::seconds(1),
            ),
            expiring(&shop, &["x.apps.example.com"], "valid", now + TimeDelta::days(1)),
        ];
        let platform = Certificate {
            hosts: vec!["*.example.com".into()],
            cert_pem: "platform".into(),
            key_pem: "platform key".into(),
        };
        let table = build_table(&RouteInputs {
            domain: "example.com",
            apps: std::slice::from_ref(&shop),
            settings: &HashMap::new(),
            domains: &domains,
            instances: &[],
            certificates: &certificates,
            platform_certificate: Some(&platform),
            now,
        });
        let served: Vec<&str> = table.certificates.iter().map(|c| c.cert_pem.as_str()).collect();
        assert_eq!(served, ["platform", "valid"]);
        let pick = |name: &str| table.certificate_for(name).map(|c| c.cert_pem.as_str());
        assert_eq!(pick("shop.example.com"), Some("platform"));
        assert_eq!(pick("x.apps.example.com"), Some("valid"));
    }

    #[test]
    fn certificates_follow_their_domains() {
        let shop = app("shop");
        let blog = app("blog");
        let domains = [
            domain(&shop, "shop.example.com"),
            domain(&shop, "*.shop.example.org"),
            // Once shop's, now blog's: shop's old certificate for it must not be served.
            domain(&blog, "blog.example.net"),
        ];
        let certificates = [
            certificate(&shop, &["shop.example.com", "a.shop.example.org"], "shop-new"),
            certificate(&shop, &["shop.example.com"], "shop-old"),
            certificate(&shop, &["blog.example.net"], "stale"),
            certificate(&blog, &["shop.example.com"], "never-blogs"),
        ];
        let platform = Certificate {
            hosts: vec!["*.apps.test".into(), "apps.test".into()],
            cert_pem: "platform".into(),
            key_pem: "platform key".into(),
        };
        let table = build_table(&RouteInputs {
            domain: "apps.test",
            apps: &[shop.clone(), blog.clone()],
            settings: &HashMap::new(),
            domains: &domains,
            instances: &[],
            certificates: &certificates,
            platform_certificate: Some(&platform),
            now: Utc::now(),
        });
        let served: Vec<&str> = table.certificates.iter().map(|c| c.cert_pem.as_str()).collect();
        assert_eq!(served, ["platform", "shop-new", "shop-old"]);
        let pick = |name: &str| table.certificate_for(name).map(|c| c.cert_pem.as_str());
        assert_eq!(pick("shop.example.com"), Some("shop-new"));
        assert_eq!(pick("a.shop.example.org"), Some("shop-new"));
        assert_eq!(pick("shop.apps.test"), Some("platform"));
        assert_eq!(pick("blog.example.net"), None);
    }
}
