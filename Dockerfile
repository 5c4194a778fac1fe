# Profile Gate as a container image: `gate` as the entrypoint. The GitHub Action (action.yml)
# is built from this file, and the nightly archive CronJob (examples/k8s/) runs it.
#
#   docker build -t profile-gate .
#   docker run --rm -v "$PWD:/work" -w /work profile-gate diff examples/profiles/stable examples/profiles/canary
#
# The build is the one the tests build from: the locked dependencies (Cargo.lock), default
# features, the toolchain of Cargo.toml's rust-version. `--build-arg GATE_COMMIT=$(git rev-parse
# --short=12 HEAD)` names the commit in `gate --version` (.git is not sent to the build).

FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
ARG GATE_COMMIT=""
RUN cargo build --release --locked \
    && install -m 0755 target/release/gate /gate

# Debian slim: glibc as in the build stage, CA certificates for the Kubernetes API, GitHub and
# object storage, and a shell for the Action's entrypoint and the CronJob.
FROM debian:bookworm-slim
# Unpinned on purpose: the newest CA certificates and security fixes of Debian 12 at build time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1001 gate \
    && useradd --uid 1001 --gid 1001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gate
COPY --from=build /gate /usr/local/bin/gate
COPY action/entrypoint.sh /usr/local/bin/gate-action
# uid 1001 is the runner user of GitHub's hosted runners: a Docker action writes its out
# directory into the mounted workspace and its outputs into runner-owned files as that user.
USER 1001:1001
ENTRYPOINT ["gate"]
CMD ["--help"]
