//! `wharf-shipper`: not built yet; see the open issues.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wharf-shipper is not built yet")
}
