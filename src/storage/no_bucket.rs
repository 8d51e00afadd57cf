//! Built without the `s3` feature: there is never a bucket (`Settings::resolve` refuses
//! `[s3]`, and `Storage::bucket` is always `None`). The methods exist so that callers read the
//! same either way; none is ever called.

use bytes::Bytes;
use std::io;
use std::path::Path;

use super::ObjectMeta;

#[derive(Debug, Clone)]
pub struct Bucket(());

const NEVER: &str = "flare was built without the s3 feature";

#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

impl Bucket {
    pub fn name(&self) -> &str {
        unreachable!("{NEVER}")
    }
    pub fn object_key(video_id: &str, upload: &str, file_name: &str) -> String {
        format!("{video_id}/composite/{upload}/{file_name}")
    }
    pub fn derived_key(video_id: &str, file_name: &str) -> String {
        format!("{video_id}/derived/{file_name}")
    }
    pub fn put_file_blocking(&self, _: &Path, _: &str) -> io::Result<ObjectMeta> {
        unreachable!("{NEVER}")
    }
    pub async fn get_to_file(&self, _: &str, _: &Path) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub fn writer(&self, _: &str) -> BucketWriter {
        unreachable!("{NEVER}")
    }
    pub fn public_url(&self, _: &str) -> Option<String> {
        unreachable!("{NEVER}")
    }
    pub async fn put_file(&self, _: &Path, _: &str, _: Option<&str>) -> io::Result<ObjectMeta> {
        unreachable!("{NEVER}")
    }
    pub fn reader_blocking(&self, _: &str, _: u64) -> std::io::Empty {
        unreachable!("{NEVER}")
    }
    pub async fn head(&self, _: &str) -> io::Result<Option<ObjectMeta>> {
        unreachable!("{NEVER}")
    }
    pub async fn read(
        &self,
        _: &str,
        _: u64,
        _: u64,
    ) -> io::Result<Option<futures_util::stream::Empty<io::Result<Bytes>>>> {
        unreachable!("{NEVER}")
    }
    pub fn size_blocking(&self, _: &str) -> io::Result<Option<u64>> {
        unreachable!("{NEVER}")
    }
    pub async fn delete(&self, _: &str) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub fn delete_blocking(&self, _: &str) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub fn delete_under(&self, _: &str) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        unreachable!("{NEVER}")
    }
    pub fn sha256_of(&self, _: &str) -> io::Result<String> {
        unreachable!("{NEVER}")
    }
    pub fn to_lost_found(&self, _: &str) -> io::Result<String> {
        unreachable!("{NEVER}")
    }
}

pub struct BucketWriter(());

impl BucketWriter {
    pub async fn put(&mut self, _: Bytes) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub async fn finish(self) -> io::Result<Written> {
        unreachable!("{NEVER}")
    }
}

pub struct Written {
    pub meta: ObjectMeta,
    pub size: u64,
    pub sha256: String,
}

impl Bucket {
    pub(crate) async fn begin_session(&self, _: &str, _: u64) -> io::Result<String> {
        unreachable!("{NEVER}")
    }
    pub(crate) fn end_session(&self, _: &str, _: &str) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub(crate) async fn append_session(&self, _: &str, _: &str) -> io::Result<SessionWriter> {
        unreachable!("{NEVER}")
    }
}

pub(crate) struct SessionWriter(());

pub(crate) struct SessionAppended {
    pub written: u64,
    pub stored: String,
    pub stale: Option<String>,
}

#[allow(dead_code)] // never made: there is no bucket
pub(crate) enum Finished {
    Kept(SessionAppended),
    Complete(Written, String),
}

impl SessionWriter {
    pub(crate) fn written(&self) -> u64 {
        unreachable!("{NEVER}")
    }
    pub(crate) async fn write(&mut self, _: Bytes) -> io::Result<()> {
        unreachable!("{NEVER}")
    }
    pub(crate) async fn checkpoint(&mut self) -> io::Result<SessionAppended> {
        unreachable!("{NEVER}")
    }
    pub(crate) async fn finish(self, _: bool) -> io::Result<Finished> {
        unreachable!("{NEVER}")
    }
}
