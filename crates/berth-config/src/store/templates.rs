//! Adding, changing and removing templates.

use super::{ConfigStore, Scope, StoreError};
use crate::model::{Config, Template};

/// Users whose templates (in users.yaml or users.d) list `template`.
fn users_of(config: &Config, template: &str) -> Vec<String> {
    config
        .users
        .iter()
        .filter(|u| {
            u.templates.iter().any(|t| t == template)
                || config
                    .overrides(u.username.as_str())
                    .is_some_and(|o| o.templates.iter().any(|t| t == template))
        })
        .map(|u| u.username.to_string())
        .collect()
}

impl ConfigStore {
    /// Adds a template at the end of containers.yaml.
    pub fn add_template(&self, template: Template) -> Result<(), StoreError> {
        self.transaction(Scope::Containers, |config| {
            if config.template(&template.name).is_some() {
                return Err(StoreError::TemplateExists(template.name));
            }
            config.templates.push(template);
            Ok(())
        })
    }

    /// Changes a template with `edit`, run on the template as currently saved, and returns it
    /// as saved. Renaming a template users may start is refused.
    pub fn update_template(
        &self,
        name: &str,
        edit: impl FnOnce(&mut Template),
    ) -> Result<Template, StoreError> {
        self.transaction(Scope::Containers, |config| {
            let index = config
                .templates
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| StoreError::NoSuchTemplate(name.to_owned()))?;
            let mut template = config.templates[index].clone();
            edit(&mut template);
            if template.name != name {
                let users = users_of(config, name);
                if !users.is_empty() {
                    return Err(StoreError::TemplateInUse {
                        template: name.to_owned(),
                        action: "renamed",
                        users,
                    });
                }
                if config.template(&template.name).is_some() {
                    return Err(StoreError::TemplateExists(template.name));
                }
            }
            config.templates[index] = template.clone();
            Ok(template)
        })
    }

    /// Removes a template nobody may start any more; returns it as it was.
    pub fn remove_template(&self, name: &str) -> Result<Template, StoreError> {
        self.transaction(Scope::Containers, |config| {
            let index = config
                .templates
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| StoreError::NoSuchTemplate(name.to_owned()))?;
            let users = users_of(config, name);
            if !users.is_empty() {
                return Err(StoreError::TemplateInUse {
                    template: name.to_owned(),
                    action: "removed",
                    users,
                });
            }
            Ok(config.templates.remove(index))
        })
    }
}
