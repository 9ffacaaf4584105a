// Zero-trust micro-segmentation for virtual machines and Kubernetes pods: one policy model for both worlds.
package microseg
