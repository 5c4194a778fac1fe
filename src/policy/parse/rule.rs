//! One rule of a policy, validated: its profile, metric, thresholds, label filters and
//! function globs.

use super::*;

/// What [`Validator::metric_keys`] checks of one rule.
struct MetricKeys<'a> {
    /// Where the rule starts.
    at: Location,
    label: &'a str,
    metric: Metric,
    /// Where its metric is written.
    metric_at: Location,
    profile: ProfileKind,
    sample: Option<&'a str>,
    raw: &'a RawRule,
    /// Whether the rule gives a (valid) `max_increase`.
    max_increase: bool,
    /// Whether it gives a (valid) `max_new_share`.
    max_new_share: bool,
}

impl Validator<'_> {
    pub(super) fn rule(
        &self,
        index: usize,
        raw: S<RawRule>,
        defaults: &Defaults,
        seen: &mut HashMap<String, Location>,
    ) -> Result<Rule, PolicyError> {
        let at = raw.referenced;
        let mut r = raw.value;

        let name = self.rule_name(index, at, r.name.take(), seen)?;
        let label = RuleLabel::new(index, Some(&name.value)).0;

        let (profile, sample) = self.rule_profile(at, &label, r.profile.take(), r.sample.take())?;
        let metric_names: Vec<&str> = Metric::ALL.iter().map(|m| m.keyword()).collect();
        let Some(metric_raw) = r.metric.take() else {
            return Err(self.err(
                at,
                Kind::MissingKey,
                format!("{label} has no metric"),
                format!("'metric:' {}", one_of(&metric_names)),
            ));
        };
        let metric: Metric = self.keyword(&metric_raw, "metric", &label)?;

        // Globs.
        let functions = self.globs(r.functions.as_ref(), "functions", &label, vec!["*".into()])?;
        let ignore = self.globs(r.ignore.as_ref(), "ignore", &label, Vec::new())?;
        let labels = self.label_matches(r.labels.as_ref(), "labels", &label)?;
        let ignore_labels =
            self.label_matches(r.ignore_labels.as_ref(), "ignore_labels", &label)?;

        // Thresholds, and keys that only some metrics take.
        let max_increase = match &r.max_increase {
            Some(v) => Some(self.fraction(v, "max_increase", &label, Bound::Change)?),
            None => None,
        };
        let max_new_share = match &r.max_new_share {
            Some(v) => Some(self.fraction(v, "max_new_share", &label, Bound::Ceiling)?),
            None => None,
        };
        let direction = match &r.direction {
            Some(v) => self.keyword(v, "direction", &label)?,
            None => Direction::Increase,
        };
        let severity = match &r.severity {
            Some(v) => self.keyword(v, "severity", &label)?,
            None => Severity::Fail,
        };
        self.metric_keys(MetricKeys {
            at,
            label: &label,
            metric,
            metric_at: metric_raw.referenced,
            profile,
            sample: sample.as_deref(),
            raw: &r,
            max_increase: max_increase.is_some(),
            max_new_share: max_new_share.is_some(),
        })?;

        let mut settings = defaults.clone();
        self.settings(
            &mut settings,
            &label,
            &r.fdr,
            &r.min_share,
            &r.min_abs_change,
            &r.normalize,
            &r.inconclusive,
        )?;

        Ok(Rule {
            name: name.value,
            profile,
            sample,
            metric,
            functions,
            ignore,
            max_increase,
            max_new_share,
            direction,
            severity,
            labels,
            ignore_labels,
            settings,
        })
    }
    /// A rule's name: present, printable, bounded, and not used by an earlier rule.
    fn rule_name(
        &self,
        index: usize,
        at: Location,
        name: Option<S<String>>,
        seen: &mut HashMap<String, Location>,
    ) -> Result<S<String>, PolicyError> {
        let anonymous = RuleLabel::new(index, None).0;
        let Some(name) = name else {
            return Err(self.err(
                at,
                Kind::MissingKey,
                format!("{anonymous} has no name"),
                "'name: ...', a unique name for the rule".into(),
            ));
        };
        let trimmed = name.value.trim();
        if trimmed.is_empty() || name.value.chars().any(char::is_control) {
            return Err(self.err(
                name.referenced,
                Kind::BadName,
                format!("the name of {anonymous} is empty or contains control characters"),
                "a short printable name such as cpu-functions".into(),
            ));
        }
        if name.value.chars().count() > MAX_NAME_CHARS {
            return Err(self.err(
                name.referenced,
                Kind::TooLarge,
                format!("the name of {anonymous} is longer than {MAX_NAME_CHARS} characters"),
                "a short printable name such as cpu-functions".into(),
            ));
        }
        if let Some(first) = seen.get(&name.value) {
            return Err(self.err(
                name.referenced,
                Kind::DuplicateRuleName,
                format!(
                    "rule name '{}' is used twice (first at line {}, column {})",
                    quote(&name.value),
                    first.line(),
                    first.column()
                ),
                "a unique name for every rule".into(),
            ));
        }
        seen.insert(name.value.clone(), name.referenced);
        Ok(name)
    }

    /// A rule's profile kind, and its sample type when it names one the kind has.
    fn rule_profile(
        &self,
        at: Location,
        label: &str,
        profile: Option<S<String>>,
        sample: Option<S<String>>,
    ) -> Result<(ProfileKind, Option<String>), PolicyError> {
        let profile_names: Vec<&str> = ProfileKind::ALL.iter().map(|k| k.name()).collect();
        let Some(profile_raw) = profile else {
            return Err(self.err(
                at,
                Kind::MissingKey,
                format!("{label} has no profile"),
                format!("'profile:' {}", one_of(&profile_names)),
            ));
        };
        let profile = ProfileKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == profile_raw.value)
            .ok_or_else(|| {
                let message = format!("unknown profile '{}' in {label}", quote(&profile_raw.value));
                self.err(
                    profile_raw.referenced,
                    Kind::UnknownValue,
                    with_suggestion(message, &profile_raw.value, &profile_names),
                    one_of(&profile_names),
                )
            })?;
        let sample = match sample {
            None => None,
            Some(s) => {
                let known = sample_types(profile);
                if !known.contains(&s.value.as_str()) {
                    let message = format!(
                        "unknown sample type '{}' for profile {profile} in {label}",
                        quote(&s.value)
                    );
                    return Err(self.err(
                        s.referenced,
                        Kind::UnknownValue,
                        with_suggestion(message, &s.value, known),
                        one_of(known),
                    ));
                }
                Some(s.value)
            }
        };
        Ok((profile, sample))
    }

    /// The keys a rule's metric takes: its threshold must be there, keys for other metrics
    /// must not.
    fn metric_keys(&self, k: MetricKeys<'_>) -> Result<(), PolicyError> {
        let MetricKeys {
            at,
            label,
            metric,
            metric_at,
            profile,
            sample,
            raw: r,
            max_increase,
            max_new_share,
        } = k;
        let not_allowed = |key: &str, value_at: Location, why: &str, expected: &str| {
            self.err(
                value_at,
                Kind::KeyNotAllowed,
                format!("'{key}' does not apply to {label}: {why}"),
                expected.to_string(),
            )
        };
        match metric {
            Metric::Flat | Metric::Cum | Metric::Total => {
                if let Some(v) = &r.max_new_share {
                    return Err(not_allowed(
                        "max_new_share",
                        v.referenced,
                        &format!("it has metric {metric}, and max_new_share is for metric new"),
                        "max_increase for this metric, or metric: new",
                    ));
                }
                if !max_increase {
                    return Err(self.err(
                        at,
                        Kind::MissingKey,
                        format!("{label} has no max_increase"),
                        format!("'max_increase:' the largest allowed change for metric {metric}, e.g. 20%"),
                    ));
                }
                if metric == Metric::Total {
                    for (key, list) in [("functions", &r.functions), ("ignore", &r.ignore)] {
                        if let Some(list) = list {
                            return Err(not_allowed(
                                key,
                                list.referenced,
                                "metric total compares the whole profile, not chosen functions",
                                "no functions or ignore on a total rule (use metric flat or cum)",
                            ));
                        }
                    }
                }
            }
            Metric::Growth => {
                let sample_type = sample.unwrap_or(sample_types(profile)[0]);
                if !crate::compare::trend::is_level_sample_type(profile, sample_type) {
                    return Err(self.err(
                        metric_at,
                        Kind::KeyNotAllowed,
                        format!("{label} has metric growth, which follows a level across windows, and {profile} {sample_type} is not one"),
                        "metric: growth on profile goroutine, or on profile heap with sample inuse_space or inuse_objects".into(),
                    ));
                }
                if let Some(v) = &r.max_new_share {
                    return Err(not_allowed(
                        "max_new_share",
                        v.referenced,
                        "it has metric growth, and max_new_share is for metric new",
                        "max_increase: the largest climb over the capture, e.g. 10%",
                    ));
                }
                if let Some(v) = &r.direction {
                    return Err(not_allowed(
                        "direction",
                        v.referenced,
                        "a leak only climbs, so there is no direction",
                        "no direction on a rule with metric growth",
                    ));
                }
                if !max_increase {
                    return Err(self.err(
                        at,
                        Kind::MissingKey,
                        format!("{label} has no max_increase"),
                        "'max_increase:' the largest climb over the capture, relative to the first window, e.g. 10%".into(),
                    ));
                }
            }
            Metric::New => {
                if let Some(v) = &r.max_increase {
                    return Err(not_allowed(
                        "max_increase",
                        v.referenced,
                        "metric new judges new functions by their share",
                        "max_new_share for metric new",
                    ));
                }
                if let Some(v) = &r.direction {
                    return Err(not_allowed(
                        "direction",
                        v.referenced,
                        "a new function can only appear, so there is no direction",
                        "no direction on a rule with metric new",
                    ));
                }
                if !max_new_share {
                    return Err(self.err(
                        at,
                        Kind::MissingKey,
                        format!("{label} has no max_new_share"),
                        "'max_new_share:' the largest share a new function may take, e.g. 2%"
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn label_matches(
        &self,
        map: Option<&S<BTreeMap<String, S<String>>>>,
        key: &str,
        label: &str,
    ) -> Result<Vec<LabelMatch>, PolicyError> {
        let Some(map) = map else {
            return Ok(Vec::new());
        };
        if map.value.len() > MAX_GLOBS {
            return Err(self.err(
                map.referenced,
                Kind::TooLarge,
                format!("'{key}' in {label} has {} labels", map.value.len()),
                format!("at most {MAX_GLOBS} labels"),
            ));
        }
        let expected =
            "a pprof label and a regular expression for its value, e.g. route: ^/checkout$";
        let mut out = Vec::with_capacity(map.value.len());
        for (name, pattern) in &map.value {
            if name.trim().is_empty() || pattern.value.chars().count() > MAX_GLOB_CHARS {
                return Err(self.err(
                    pattern.referenced,
                    Kind::Glob,
                    format!("an empty label name or an over-long pattern in '{key}' of {label}"),
                    expected.into(),
                ));
            }
            if let Err(e) = format!("{name}={}", pattern.value).parse::<TagFilter>() {
                return Err(self.err(
                    pattern.referenced,
                    Kind::Glob,
                    format!("bad label pattern in '{key}' of {label}: {e}"),
                    expected.into(),
                ));
            }
            out.push(LabelMatch {
                key: name.clone(),
                pattern: pattern.value.clone(),
            });
        }
        Ok(out)
    }
    pub(super) fn globs(
        &self,
        list: Option<&S<Vec<S<String>>>>,
        key: &str,
        label: &str,
        default: Vec<String>,
    ) -> Result<Globs, PolicyError> {
        let expected_glob = "a glob such as runtime.* ('*' any text, '?' one character, \
                             '{a,b}' either, '\\' escapes; '[' and ']' are literal)";
        let patterns = match list {
            None => default,
            Some(list) => {
                if list.value.len() > MAX_GLOBS {
                    return Err(self.err(
                        list.referenced,
                        Kind::TooLarge,
                        format!("'{key}' in {label} has {} globs", list.value.len()),
                        format!("at most {MAX_GLOBS} globs"),
                    ));
                }
                if key == "functions" && list.value.is_empty() {
                    return Err(self.err(
                        list.referenced,
                        Kind::Glob,
                        format!("'functions' in {label} is empty, so the rule selects nothing"),
                        "at least one glob, e.g. [\"*\"] for every function".into(),
                    ));
                }
                let mut patterns = Vec::with_capacity(list.value.len());
                for glob in &list.value {
                    let pattern = &glob.value;
                    if pattern.chars().count() > MAX_GLOB_CHARS {
                        return Err(self.err(
                            glob.referenced,
                            Kind::TooLarge,
                            format!("a glob in '{key}' of {label} is longer than {MAX_GLOB_CHARS} characters"),
                            format!("globs of at most {MAX_GLOB_CHARS} characters"),
                        ));
                    }
                    if pattern.is_empty() {
                        return Err(self.err(
                            glob.referenced,
                            Kind::Glob,
                            format!("an empty glob in '{key}' of {label}"),
                            expected_glob.into(),
                        ));
                    }
                    if let Err(why) = compile(pattern) {
                        return Err(self.err(
                            glob.referenced,
                            Kind::Glob,
                            format!("bad glob '{}' in '{key}' of {label}: {why}", quote(pattern)),
                            expected_glob.into(),
                        ));
                    }
                    patterns.push(pattern.clone());
                }
                patterns
            }
        };
        Globs::new(patterns).map_err(|why| {
            let at = list.map_or(Location::UNKNOWN, |l| l.referenced);
            self.err(
                at,
                Kind::TooLarge,
                format!("'{key}' of {label} cannot be compiled: {}", quote(&why)),
                "fewer or simpler globs".into(),
            )
        })
    }
}
