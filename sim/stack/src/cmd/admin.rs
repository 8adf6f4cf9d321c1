//! `voltmesh admin`: governance from the command line. One file travels between the
//! organisations: `draft` writes a proposal, each organisation `sign`s it on its own machine with
//! its key file, `combine` puts the signed copies together, `submit` hands it to a node, and
//! `show` prints the community as a node's committed ledger says.
//!
//! ```text
//! voltmesh admin draft --node http://127.0.0.1:8080 --id add-h7 add-participant --participant h7 --key <hex> > p.json
//! voltmesh admin sign p.json --key org1.key > p.org1.json        # on org 1's machine
//! voltmesh admin sign p.json --key org2.key > p.org2.json        # on org 2's machine
//! voltmesh admin combine p.org1.json p.org2.json p.org3.json > p.all.json
//! voltmesh admin submit p.all.json --node http://127.0.0.1:8080
//! ```
//! Approvals may also be submitted one file at a time, to any node: the ledger collects them,
//! and the action takes effect once the policy's threshold of them is committed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use voltmesh_engine::{Mechanism, ParticipantId, Price, Tariffs, K};
use voltmesh_wire::client::BlockingNodeClient;
use voltmesh_wire::governance::{Action, Approval, Policy, Proposal, Rules, Scope, SignedProposal};
use voltmesh_wire::{GenesisValidator, PublicKey};

use super::BadInput;

/// `voltmesh admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Write a new proposal (JSON, on stdout or to `--out`), to be signed by each organisation.
    Draft(DraftArgs),
    /// Add this key file's approval to a proposal file.
    Sign {
        /// The proposal file.
        file: PathBuf,
        /// The approver's key file (64 hex digits; a validator's node key works).
        #[arg(long)]
        key: PathBuf,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Put the approvals of several copies of one proposal file together.
    Combine {
        /// The signed copies.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Hand a signed proposal to a node (it goes into the next block the node proposes).
    Submit {
        /// The proposal file, with at least one approval.
        file: PathBuf,
        /// The node's API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        node: String,
    },
    /// Print the community (participants, rules and their schedule, policies, validators,
    /// pending proposals) as the node's committed ledger says.
    Show {
        /// The node's API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        node: String,
    },
}

#[derive(Debug, Args)]
struct DraftArgs {
    /// A name unique to this proposal (printable ASCII without `:`, `"` or `\`).
    #[arg(long)]
    id: String,
    /// The node to read the neighborhood (and, for `change-rules`, the rules in force) from.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    node: String,
    /// The neighborhood, instead of asking the node (offline drafting; `change-rules` then
    /// needs `--rules`).
    #[arg(long)]
    neighborhood: Option<String>,
    /// How long the proposal may wait for its approvals, in hours (at most 720).
    #[arg(long, default_value_t = 168)]
    valid_for_hours: u64,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    action: ActionArgs,
}

#[derive(Debug, Subcommand)]
enum ActionArgs {
    /// A new member with the keys that may sign its orders.
    AddParticipant {
        /// Its pseudonym.
        #[arg(long)]
        participant: String,
        /// A key that may sign its orders (64 hex digits); repeat for several.
        #[arg(long = "key", required = true)]
        keys: Vec<PublicKey>,
    },
    /// A member leaves from an interval on.
    RemoveParticipant {
        /// The member.
        #[arg(long)]
        participant: String,
        /// First interval it may not trade in (Unix seconds or RFC 3339); its gate must still be
        /// open when the proposal takes effect.
        #[arg(long)]
        from_interval: String,
    },
    /// Another key may sign for a member.
    AddKey {
        /// The member.
        #[arg(long)]
        participant: String,
        /// The key (64 hex digits).
        #[arg(long)]
        key: PublicKey,
    },
    /// A key may no longer sign for a member.
    RevokeKey {
        /// The member.
        #[arg(long)]
        participant: String,
        /// The key (64 hex digits).
        #[arg(long)]
        key: PublicKey,
    },
    /// New market rules from an interval on: the rules in force there (from the node, or
    /// `--rules`), with the changes given.
    ChangeRules {
        /// First interval they apply to (Unix seconds or RFC 3339).
        #[arg(long)]
        from_interval: String,
        /// A JSON file of the whole rules to start from, instead of the node's.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The feed-in tariff (price per kWh).
        #[arg(long)]
        feed_in: Option<Price>,
        /// The retail price (price per kWh).
        #[arg(long)]
        retail: Option<Price>,
        /// The network fee (price per kWh).
        #[arg(long)]
        network_fee: Option<Price>,
        /// A uniform-price clearing with this k (0 to 1).
        #[arg(long)]
        k: Option<K>,
        /// The most orders one interval may hold.
        #[arg(long)]
        max_orders_per_interval: Option<u32>,
    },
    /// Per-interval tariffs (a supplier's dynamic tariff, approved by the prices policy): a
    /// JSON file mapping interval starts (Unix seconds) to `{"feed_in": .., "retail": ..}`.
    SetPrices {
        /// The file.
        #[arg(long)]
        file: PathBuf,
    },
    /// A new validator set: the node's set with validators added and removed (replace one:
    /// remove it and add the new one), or a whole set from a file. It takes effect at an epoch
    /// boundary every node derives from the chain.
    SetValidators {
        /// A validator to add: `<public key, 64 hex digits>=<libp2p multiaddr>`; repeat for
        /// several.
        #[arg(long = "add")]
        add: Vec<String>,
        /// The key of a validator to remove; repeat for several.
        #[arg(long = "remove")]
        remove: Vec<PublicKey>,
        /// A JSON file of the whole new set (`[{"public_key": .., "address": ..}, ..]`), instead
        /// of the node's.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// A new policy for a scope.
    SetPolicy {
        /// Which scope.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// A key that may approve (64 hex digits); repeat for several.
        #[arg(long = "key", required = true)]
        keys: Vec<PublicKey>,
        /// How many distinct keys must approve.
        #[arg(long)]
        threshold: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScopeArg {
    Members,
    Rules,
    Prices,
}

/// The file `voltmesh admin` passes around: the proposal, the neighborhood its signatures are
/// bound to, and the approvals so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalFile {
    /// The neighborhood (signatures are bound to it).
    pub neighborhood: String,
    /// The proposal.
    pub proposal: Proposal,
    /// Approvals so far.
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

/// Runs `voltmesh admin`.
///
/// # Errors
/// Bad files and arguments are [`BadInput`]; an unreachable node is not.
pub fn run(args: &AdminArgs) -> anyhow::Result<()> {
    match &args.command {
        AdminCommand::Draft(draft) => {
            let file = draft_file(draft)?;
            write_out(draft.out.as_deref(), &file)
        }
        AdminCommand::Sign { file, key, out } => {
            let mut proposal = read_file(file)?;
            let key = voltmesh_wire::key::read(key).map_err(|e| BadInput(anyhow::Error::new(e)))?;
            let approval = proposal.proposal.approve(&proposal.neighborhood, &key);
            let signed = SignedProposal {
                proposal: proposal.proposal.clone(),
                approvals: std::mem::take(&mut proposal.approvals),
            }
            .combine(SignedProposal {
                proposal: proposal.proposal.clone(),
                approvals: vec![approval],
            })
            .map_err(|e| BadInput(e.into()))?;
            proposal.approvals = signed.approvals;
            write_out(out.as_deref(), &proposal)
        }
        AdminCommand::Combine { files, out } => {
            let mut all: Option<(String, SignedProposal)> = None;
            for path in files {
                let file = read_file(path)?;
                let signed = SignedProposal {
                    proposal: file.proposal,
                    approvals: file.approvals,
                };
                all = Some(match all {
                    None => (file.neighborhood, signed),
                    Some((neighborhood, so_far)) => {
                        if neighborhood != file.neighborhood {
                            return Err(BadInput(anyhow::anyhow!(
                                "{}: neighborhood {:?}, not {neighborhood:?}",
                                path.display(),
                                file.neighborhood
                            ))
                            .into());
                        }
                        let combined = so_far
                            .combine(signed)
                            .map_err(|e| BadInput(anyhow::anyhow!("{}: {e}", path.display())))?;
                        (neighborhood, combined)
                    }
                });
            }
            let (neighborhood, signed) = all.context("no files")?;
            write_out(
                out.as_deref(),
                &ProposalFile {
                    neighborhood,
                    proposal: signed.proposal,
                    approvals: signed.approvals,
                },
            )
        }
        AdminCommand::Submit { file, node } => {
            let file = read_file(file)?;
            for approval in &file.approvals {
                if !approval.valid_for(&file.proposal, &file.neighborhood) {
                    return Err(BadInput(anyhow::anyhow!(
                        "the approval by {} does not verify for this proposal in {:?}",
                        approval.public_key,
                        file.neighborhood
                    ))
                    .into());
                }
            }
            let signed = SignedProposal {
                proposal: file.proposal,
                approvals: file.approvals,
            };
            signed.check_form().map_err(|e| BadInput(e.into()))?;
            let client = client(node)?;
            let answer = client
                .submit_proposal(&signed)
                .with_context(|| format!("submitting to {node}"))?;
            super::print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            ));
            Ok(())
        }
        AdminCommand::Show { node } => {
            let view = client(node)?
                .community()
                .with_context(|| format!("reading {node}"))?;
            super::print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&view).unwrap_or_default()
            ));
            Ok(())
        }
    }
}

fn client(node: &str) -> anyhow::Result<BlockingNodeClient> {
    BlockingNodeClient::new(node).with_context(|| format!("node API {node}"))
}

fn read_file(path: &Path) -> anyhow::Result<ProposalFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(BadInput)?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proposal file", path.display()))
        .map_err(|e| BadInput(e).into())
}

fn write_out(out: Option<&Path>, file: &ProposalFile) -> anyhow::Result<()> {
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(file).unwrap_or_default()
    );
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            super::print(&text);
            Ok(())
        }
    }
}

fn interval_arg(text: &str) -> anyhow::Result<i64> {
    text.parse::<i64>()
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp())
        })
        .ok_or_else(|| BadInput(anyhow::anyhow!("{text:?}: use Unix seconds or RFC 3339")).into())
}

/// `<public key>=<multiaddr>`.
fn validator_arg(text: &str) -> anyhow::Result<GenesisValidator> {
    let bad = || {
        BadInput(anyhow::anyhow!(
            "--add {text:?}: use <public key hex>=<multiaddr>"
        ))
    };
    let (key, address) = text.split_once('=').ok_or_else(bad)?;
    let public_key: PublicKey = key.parse().map_err(|_| bad())?;
    Ok(GenesisValidator {
        public_key,
        address: address.to_owned(),
    })
}

fn draft_file(draft: &DraftArgs) -> anyhow::Result<ProposalFile> {
    if draft.valid_for_hours == 0 || draft.valid_for_hours > 720 {
        return Err(BadInput(anyhow::anyhow!("--valid-for-hours: 1 to 720")).into());
    }
    let needs_node = draft.neighborhood.is_none()
        || matches!(
            draft.action,
            ActionArgs::ChangeRules { rules: None, .. }
                | ActionArgs::SetValidators { file: None, .. }
        );
    let community = if needs_node {
        Some(
            client(&draft.node)?
                .community()
                .with_context(|| format!("reading the community from {}", draft.node))?,
        )
    } else {
        None
    };
    let neighborhood = match (&draft.neighborhood, &community) {
        (Some(name), _) => name.clone(),
        (None, Some(view)) => view.neighborhood.clone(),
        (None, None) => unreachable_neighborhood()?,
    };
    let action = match &draft.action {
        ActionArgs::AddParticipant { participant, keys } => Action::AddParticipant {
            participant: ParticipantId::from(participant.as_str()),
            keys: keys.clone(),
        },
        ActionArgs::RemoveParticipant {
            participant,
            from_interval,
        } => Action::RemoveParticipant {
            participant: ParticipantId::from(participant.as_str()),
            from_interval: interval_arg(from_interval)?,
        },
        ActionArgs::AddKey { participant, key } => Action::AddKey {
            participant: ParticipantId::from(participant.as_str()),
            key: *key,
        },
        ActionArgs::RevokeKey { participant, key } => Action::RevokeKey {
            participant: ParticipantId::from(participant.as_str()),
            key: *key,
        },
        ActionArgs::ChangeRules {
            from_interval,
            rules,
            feed_in,
            retail,
            network_fee,
            k,
            max_orders_per_interval,
        } => {
            let from_interval = interval_arg(from_interval)?;
            let mut base: Rules = match (rules, &community) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))
                        .map_err(BadInput)?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a rules file", path.display()))
                        .map_err(BadInput)?
                }
                (None, Some(view)) => view
                    .rules
                    .iter()
                    .rfind(|r| r.from_interval.is_none_or(|f| f <= from_interval))
                    .map(|r| r.rules)
                    .context("the node shows no rules")?,
                (None, None) => unreachable_neighborhood()?,
            };
            let tariffs = Tariffs::new(
                feed_in.unwrap_or(base.rules.tariffs.feed_in),
                retail.unwrap_or(base.rules.tariffs.retail),
            )
            .map_err(|e| BadInput(e.into()))?;
            base.rules.tariffs = tariffs;
            if let Some(fee) = network_fee {
                base.network_fee = *fee;
            }
            if let Some(k) = k {
                base.mechanism = Mechanism::Uniform { k: *k };
            }
            if let Some(max) = max_orders_per_interval {
                base.admission.max_orders_per_interval = *max;
            }
            Action::ChangeRules {
                from_interval,
                rules: base,
            }
        }
        ActionArgs::SetPrices { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))
                .map_err(BadInput)?;
            let prices: std::collections::BTreeMap<i64, Tariffs> = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a prices file", file.display()))
                .map_err(BadInput)?;
            Action::SetPrices { prices }
        }
        ActionArgs::SetValidators { add, remove, file } => {
            let mut validators: Vec<GenesisValidator> = match (file, &community) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))
                        .map_err(BadInput)?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a validator set file", path.display()))
                        .map_err(BadInput)?
                }
                (None, Some(view)) => view.validators.clone(),
                (None, None) => unreachable_neighborhood()?,
            };
            for key in remove {
                let before = validators.len();
                validators.retain(|v| v.public_key != *key);
                if validators.len() == before {
                    return Err(BadInput(anyhow::anyhow!(
                        "--remove {key}: not a validator of the set"
                    ))
                    .into());
                }
            }
            for entry in add {
                validators.push(validator_arg(entry)?);
            }
            voltmesh_wire::governance::check_validators(&validators)
                .map_err(|e| BadInput(e.into()))?;
            Action::SetValidators { validators }
        }
        ActionArgs::SetPolicy {
            scope,
            keys,
            threshold,
        } => {
            let policy = Policy {
                keys: keys.clone(),
                threshold: *threshold,
            };
            policy.check().map_err(|e| BadInput(e.into()))?;
            Action::SetPolicy {
                scope: match scope {
                    ScopeArg::Members => Scope::Members,
                    ScopeArg::Rules => Scope::Rules,
                    ScopeArg::Prices => Scope::Prices,
                },
                policy,
            }
        }
    };
    voltmesh_wire::governance::check_id(&draft.id)
        .map_err(|e| BadInput(anyhow::anyhow!("--id: {e}")))?;
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Ok(ProposalFile {
        neighborhood,
        proposal: Proposal {
            id: draft.id.clone(),
            valid_until_ms: now_ms + draft.valid_for_hours * 3_600_000,
            action,
        },
        approvals: Vec::new(),
    })
}

/// `needs_node` asks the node whenever the neighborhood or the rules are not given.
fn unreachable_neighborhood<T>() -> anyhow::Result<T> {
    Err(anyhow::anyhow!(
        "no node was asked for what the proposal needs"
    ))
}
