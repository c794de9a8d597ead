//! `wharf`: not built yet; see the open issues.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wharf is not built yet")
}
