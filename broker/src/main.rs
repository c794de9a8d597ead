//! `wharf-broker`: not built yet; see the open issues.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wharf-broker is not built yet")
}
