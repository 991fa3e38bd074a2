fn main() {
    print!("{}", aerospike_kubernetes_operator::api::crds_yaml());
}
