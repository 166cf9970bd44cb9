// Package pki is herd's cluster public-key infrastructure.
//
// A cluster has one certificate authority (CA), an ECDSA P-256 key pair
// made when the cluster is bootstrapped. Every node makes its own key pair
// and asks the CA for a certificate naming it (Subject CN and a DNS SAN),
// its advertise addresses (IP SANs) and its role (Subject OU, RoleServer or
// RoleClient); the node's private key never leaves the node.
//
// A new node joins with a JoinToken: a public ID, a 128-bit secret (which
// the cluster stores only hashed, see HashSecret) and the pin of the CA's
// public key (CA.Hash, like kubeadm's discovery hash). Before it sends the
// secret, the joiner checks with JoinClientConfig that the cluster it dialed
// presents a certificate chaining to the pinned CA.
//
// Certs holds a node's current certificate and the CA pool, and builds the
// tls.Configs for node-to-node mutual TLS (TLS 1.3 only), for the HTTPS API
// (TLS 1.2 and up, client certificates optional) and for dialing peers. Its
// certificate can be swapped at run time (Certs.Update); every handshake
// after the swap uses the new one while open connections carry on.
//
// Seal and Open protect secrets at rest (the CA key, for instance) under a
// 32-byte cluster secret with AES-256-GCM.
package pki
