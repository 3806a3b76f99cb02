//! Synthetic log corpora (auth.log with sshd attacks and noise, nginx access logs).
//! Skeleton: the filters engineer fills this in.
