//! One audit record per AlterConfigs, IncrementalAlterConfigs,
//! DeleteRecords and DeleteGroups request, naming what was asked and
//! each resource's outcome; `errorCode` when the request failed as a whole.

use serde_json::json;

use super::admin_client::*;
use super::*;
use crate::broker::configs::{OP_DELETE, OP_SET};

#[tokio::test]
async fn each_new_admin_request_gives_one_audit_record() {
    let (b, sink) = audited_broker().await;
    create(&b, "aud", 1).await;
    produce(&b, "aud", 0, client_batch(3, Compression::None, None), 1).await;
    commit(&b, "old", "aud", 1).await;

    let ops = [
        ("retention.ms", OP_SET, Some("1000")),
        ("max.message.bytes", OP_DELETE, None),
    ];
    let body = incremental_request(2, "aud", &ops, false);
    let r = audited(&b, &sink, ApiKey::IncrementalAlterConfigs, 1, body).await;
    assert_eq!(r["eventName"], "IncrementalAlterConfigs");
    assert_eq!(r["readOnly"], false);
    assert_eq!(r["userAgent"], "scenario");
    assert_eq!(
        r["requestParameters"],
        json!({"validateOnly": false, "resources": [{
            "resourceType": "TOPIC", "resourceName": "aud", "configs": [
                {"name": "retention.ms", "operation": "SET", "value": "1000"},
                {"name": "max.message.bytes", "operation": "DELETE", "value": null}]}]})
    );
    assert_eq!(
        r["responseElements"],
        json!({"resources": [{"resourceType": "TOPIC", "resourceName": "aud", "errorCode": "NONE"}]})
    );

    let body = alter_request("aud", &[("flush.ms", "5")]);
    let r = audited(&b, &sink, ApiKey::AlterConfigs, 2, body).await;
    assert_eq!(r["eventName"], "AlterConfigs");
    assert_eq!(
        r["requestParameters"]["resources"][0]["configs"],
        json!([{"name": "flush.ms", "value": "5"}])
    );
    assert_eq!(r["errorCode"], "INVALID_CONFIG", "{r}");
    assert_eq!(
        r["errorMessage"],
        "unknown or unsupported topic config `flush.ms`"
    );

    let body = delete_records_request("aud", 0, 2);
    let r = audited(&b, &sink, ApiKey::DeleteRecords, 2, body).await;
    assert_eq!(r["eventName"], "DeleteRecords");
    assert_eq!(
        r["requestParameters"]["topics"],
        json!([{"name": "aud", "partitions": [{"partition": 0, "offset": 2}]}])
    );
    assert_eq!(
        r["responseElements"]["partitions"],
        json!([{"topic": "aud", "partition": 0, "lowWatermark": 2, "errorCode": "NONE"}])
    );

    let body = delete_groups_request(&["old", "never"]);
    let r = audited(&b, &sink, ApiKey::DeleteGroups, 2, body).await;
    assert_eq!(r["eventName"], "DeleteGroups");
    assert_eq!(r["requestParameters"]["groups"], json!(["old", "never"]));
    assert_eq!(
        r["responseElements"]["groups"],
        json!([{"groupId": "old", "errorCode": "NONE"},
               {"groupId": "never", "errorCode": "GROUP_ID_NOT_FOUND"}])
    );
    assert!(
        r.get("errorCode").is_none(),
        "a partial failure is not a failed request: {r}"
    );

    let body = delete_groups_request(&["never"]);
    let r = audited(&b, &sink, ApiKey::DeleteGroups, 0, body).await;
    assert_eq!(r["errorCode"], "GROUP_ID_NOT_FOUND");
    assert_eq!(r["errorMessage"], "group `never`: GROUP_ID_NOT_FOUND");

    let body = delete_records_request("aud", 0, 99);
    let r = audited(&b, &sink, ApiKey::DeleteRecords, 1, body).await;
    assert_eq!(r["errorCode"], "OFFSET_OUT_OF_RANGE");
    assert_eq!(r["errorMessage"], "partition aud-0: OFFSET_OUT_OF_RANGE");
}
