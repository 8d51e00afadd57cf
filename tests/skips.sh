# Tests that look at what one backend holds and another does not, skipped by name when the
# suite runs on the other (tests/s3.sh, tests/pg.sh). Each is covered for that backend in its
# own tests (tests/api/bucket.rs, tests/api/postgres.rs) or said in the README.

# Objects in a bucket: backups and bundles (refused with a bucket), sendfile (local files
# only), Last-Modified set by flare (a store sets its own), and tests that look into objects/
# or fill the data folder's disk.
S3_SKIP=(
  backup:: bundle::
  media::a_kept_alive_connection_moves_from_the_sendfile_path_to_actix
  media::the_sendfile_path_answers_exactly_as_actix_does
  media::without_cachestat_the_sendfile_path_probes_the_cache_with_mincore
  media::a_replaced_object_never_shares_a_date_and_if_match_is_enforced
  media::conditional_requests_answer_304_and_if_range_guards_ranges
  datadir::the_data_folder_and_its_files_are_private
  fsck::every_kind_of_damage_is_found_and_repaired_without_losing_data
  names::hostile_names_are_refused_or_kept_inside_objects
  faults::a_full_disk_refuses_with_507_and_keeps_what_was_stored
  publication::a_second_file_name_replaces_the_first_object
)

# Records in PostgreSQL: tests of the SQLite file itself (flare.db, its WAL, its writer
# thread, a file deleted or made read-only under the server) and of backups and bundles
# (refused on PostgreSQL: pg_dump is the tool).
PG_SKIP=(
  backup:: bundle::
  datadir::a_lost_database_beside_stored_objects_is_not_silently_started_over
  datadir::a_database_deleted_under_the_server_refuses_writes_and_is_not_remade_empty
)
