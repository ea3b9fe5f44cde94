-- High-water marks of the SSC export: data for Pacific date D is complete only when
-- synced_through >= start of D+1 (Pacific) for every table the Cody Pro numbers read.
SELECT table_name, synced_through
FROM ssc.sync_status
